"""The pipeline's and the lab's scenario clocks are one formula, written twice on purpose.

``pipeline/clock.py`` ships in the wheel; ``lab/clock.py`` does not, and the lab imports nothing
from the pipeline, because it is the independent ground truth a run is scored against (a clock
bug shared by both would be invisible). Neither can import the other, so this test feeds both
the same start, anchor, speed and instants and asserts they agree: the poll at 10:15 scenario
time must be the same real instant to the lab's authoritative server and to the pipeline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lab.clock import ScenarioClock as LabClock
from lab.timeparse import from_epoch, to_epoch
from pipeline.clock import ScenarioClock as PipelineClock

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
ANCHOR = 1_764_620_000.25  # a real unix instant with a fraction, as time.time() gives
CASES = [(START, ANCHOR, 1.0), (START, ANCHOR, 900.0), (START, ANCHOR, 3600.0),
         (datetime(2026, 1, 1, 12, 30, 15, 500000, tzinfo=UTC), 1_700_000_000.0, 600.0),
         (START, ANCHOR, 0.5)]
OFFSETS = [0.0, 0.001, 0.25, 1.0, 7.5, 59.999, 1344.0]  # real seconds after the anchor


def _pair(start: datetime, anchor: float, speed: float) -> tuple[PipelineClock, LabClock]:
    return (PipelineClock(start=start, anchor=anchor, speed=speed),
            LabClock(start=to_epoch(start), anchor=anchor, speed=speed))


def _same_instant(a: datetime, b: datetime) -> bool:
    """Equal to the microsecond (datetime's resolution; the lab computes in float seconds)."""
    return abs(a - b) <= timedelta(microseconds=1)


@pytest.mark.parametrize(("start", "anchor", "speed"), CASES)
def test_scenario_time_of_a_real_instant(start: datetime, anchor: float, speed: float) -> None:
    pipe, lab = _pair(start, anchor, speed)
    for off in OFFSETS:
        real = anchor + off
        ours, theirs = pipe.at_real(real), from_epoch(lab.scenario_at(real))
        assert _same_instant(ours, theirs), (off, ours, theirs)
        # and both are the formula (a unix float near 1.7e9 resolves ~0.24 µs, times speed)
        assert abs((ours - start) - timedelta(seconds=off * speed)) <= timedelta(
            microseconds=1 + speed * 0.25)


@pytest.mark.parametrize(("start", "anchor", "speed"), CASES)
def test_real_instant_of_a_scenario_time(start: datetime, anchor: float, speed: float) -> None:
    pipe, lab = _pair(start, anchor, speed)
    for minutes in (0, 15, 30, 45, 24 * 60, 14 * 24 * 60):
        when = start + timedelta(minutes=minutes)
        assert pipe.real_at(when) == pytest.approx(lab.real_at(when), abs=1e-6)
        assert pipe.real_at(when) == pytest.approx(anchor + minutes * 60 / speed, abs=1e-6)
        assert _same_instant(pipe.at_real(pipe.real_at(when)), when)


@pytest.mark.parametrize("speed", [1.0, 900.0, 3600.0, 0.5])
def test_scenario_spans_in_real_seconds(speed: float) -> None:
    pipe, lab = _pair(START, ANCHOR, speed)
    for span in (0.0, 1.0, 20.0, 900.0, 86400.0):
        assert pipe.real_seconds(span) == lab.scale_seconds(span) == span / speed


def test_both_clocks_follow_real_time_from_the_anchor() -> None:
    """``now()`` of each is its mapping of the same real clock, not a clock of its own."""
    pipe, lab = _pair(START, ANCHOR, 900.0)
    before = lab.now()
    ours = pipe.now()
    after = lab.now()
    assert to_epoch(ours) >= before - 1e-6 and to_epoch(ours) <= after + 1e-6
