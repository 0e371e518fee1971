"""The lab's config writer keeps to the pipeline's duration grammar.

The lab imports nothing from the pipeline (design rule), so the two grammars can only drift
apart silently; this test holds ``lab.timeparse.format_duration`` to
``pipeline.config.parse_duration`` (and to the lab's own reader) for any interval it can write.
tests/faults/test_faults_config_lab.py does the same for the whole rendered config.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.timeparse import format_duration
from lab.timeparse import parse_duration as lab_parse
from pipeline.config import parse_duration


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (1, "1s"), (90, "1m30s"), (900, "15m"), (5400, "1h30m"), (27450, "7h37m30s"),
    (86400, "1d"), (90061.25, "1d1h1m1s250ms"), (0.25, "250ms"), (1.5, "1s500ms"),
    (14 * 86400, "14d"),
])
def test_format_duration_writes_compound_whole_parts(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds == lab_parse(text)


@pytest.mark.parametrize("seconds", [-1.0, float("inf"), float("nan"), 0.0001, 1.0005])
def test_what_the_grammar_cannot_say_exactly_is_refused_not_rounded(seconds: float) -> None:
    with pytest.raises(ValueError):
        format_duration(seconds)


@given(st.integers(min_value=0, max_value=10**13))
def test_every_whole_millisecond_round_trips_through_the_pipeline(ms: int) -> None:
    seconds = ms / 1000
    text = format_duration(seconds)
    assert parse_duration(text) == seconds
    assert lab_parse(text) == pytest.approx(seconds, rel=1e-12)
