"""The duration grammar of the configuration, one test per rule (pipeline/config/duration.py).

Accepted and refused forms side by side, so a change to the grammar shows here first; the lab's
config writer is held to the same grammar by tests/lab/test_lab_ewconfig.py and
tests/faults/test_faults_config_lab.py.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from pipeline.config import ConfigError, parse_config, parse_duration

MINIMAL = {
    "targets": [{"name": "api.lab.test"}],
    "resolvers": [{"name": "r", "address": "127.0.0.1"}],
}


def refused(value: object) -> str:
    with pytest.raises(ValueError) as err:
        parse_duration(value)
    return str(err.value)


# rule 1: a TOML number is seconds, finite and not negative; true/false is no number here
@pytest.mark.parametrize(("value", "seconds"), [(0, 0.0), (90, 90.0), (0.25, 0.25), (1e3, 1e3)])
def test_a_number_is_seconds(value: float, seconds: float) -> None:
    assert parse_duration(value) == seconds and isinstance(parse_duration(value), float)


@pytest.mark.parametrize(("value", "reason"), [(-1, "must not be negative"),
                                               (float("inf"), "finite"), (float("nan"), "finite"),
                                               (True, "expected a duration"),
                                               ([1], "is not a duration")])
def test_a_number_must_be_finite_and_not_negative(value: object, reason: str) -> None:
    assert reason in refused(value)


# rule 2: a bare decimal string is seconds
@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("1.5", 1.5), (" 7 ", 7.0)])
def test_a_bare_decimal_string_is_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


# rule 3: the units and their sizes; lower case, nothing else
@pytest.mark.parametrize(("text", "seconds"), [("2d", 172800), ("1h", 3600), ("15m", 900),
                                               ("30s", 30), ("250ms", 0.25), ("1ms", 0.001)])
def test_each_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1w", "15M", "1H", "10us", "5min", "1sec", "ms", "h"])
def test_other_units_are_refused(text: str) -> None:
    assert f"{text!r} is not a duration such as 15m, 30s or 250ms" in refused(text)


# rule 4: parts from the largest unit to the smallest, each unit at most once
@pytest.mark.parametrize(("text", "seconds"), [("1h30m", 5400), ("2d12h", 216000),
                                               ("1m30s", 90), ("1s500ms", 1.5),
                                               ("1d1h1m1s1ms", 90061.001), ("7h37m30s", 27450)])
def test_compound_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30m1h", "1m1m", "500ms1s", "1s1d", "1h1h30m"])
def test_parts_out_of_order_or_repeated_are_refused(text: str) -> None:
    assert "units run from d down to ms, each at most once" in refused(text)


# rule 5: only the last part may have a fraction
@pytest.mark.parametrize(("text", "seconds"), [("1.5h", 5400), ("1h30.5m", 5430),
                                               ("0.5s", 0.5), ("1m0.25s", 60.25)])
def test_a_fraction_in_the_last_part(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1.5h30m", "0.5m10s", "1.0d1h"])
def test_a_fraction_before_the_last_part_is_refused(text: str) -> None:
    assert "only the last part may have a fraction" in refused(text)


# rule 6: whitespace around the value, between a number and its unit, between parts
@pytest.mark.parametrize(("text", "seconds"), [(" 15m ", 900), ("15 m", 900),
                                               ("1h 30m", 5400), ("\t1h\t30 m ", 5400)])
def test_whitespace_is_allowed_between_tokens(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1 5m", "1 .5h", "1h 3 0m"])
def test_whitespace_inside_a_number_is_refused(text: str) -> None:
    assert "is not a duration" in refused(text)


# rule 7: no sign, no exponent, no bare dot, no trailing bare number, nothing empty
@pytest.mark.parametrize("text", ["-1s", "+1s", "1e3s", "1e3", ".5s", "5.s", "1h30", "30 1m",
                                  "", "   ", "soon", "1h-30m", "1,5h", "15m!"])
def test_malformed_strings_are_refused(text: str) -> None:
    assert f"{text!r} is not a duration such as 15m, 30s or 250ms" in refused(text)


# rule 8: the value is the exact sum of the parts, rounded once
@pytest.mark.parametrize("text", ["1h30m250ms", "1d1ms", "0.1m", "3ms", "59m59s999ms"])
def test_the_sum_is_exact_and_rounded_once(text: str) -> None:
    import re

    exact = sum(Fraction(n) * {"d": 86400, "h": 3600, "m": 60, "s": 1,
                               "ms": Fraction(1, 1000)}[u]
                for n, u in re.findall(r"([\d.]+)(ms|d|h|m|s)", text))
    assert parse_duration(text) == float(exact)


def test_a_number_too_large_for_a_float_is_refused_not_infinite() -> None:
    assert "finite" in refused("1" * 400 + "s")
    assert "digits" in refused("1" * 5000 + "s")


def test_the_config_takes_compound_durations_and_names_the_key_of_a_bad_one() -> None:
    cfg = parse_config({**MINIMAL, "schedule": {"interval": "1h30m", "jitter": "1m30s",
                                                "misfire_grace": "2m30s"},
                        "timeouts": {"http": "1s500ms"}}, env={})
    assert (cfg.schedule.interval_s, cfg.schedule.jitter_s, cfg.schedule.misfire_grace_s) == (
        5400, 90, 150)
    assert cfg.timeouts.http == 1.5
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, "schedule": {"interval": "30m1h"}}, env={})
    assert [k for k, _ in err.value.problems] == ["schedule.interval"]
    assert "each at most once" in str(err.value)
