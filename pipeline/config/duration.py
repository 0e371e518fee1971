"""The one duration grammar of the configuration (and of the report's duration options).

A duration is either a TOML number, taken as seconds, or a string written by a person or by the
lab's config writer (``lab/ewconfig.py`` emits only this grammar; a test renders the lab's config
for every scenario and parses it here)::

    duration := NUMBER                          a TOML integer or float: seconds, finite, >= 0
              | WS* DECIMAL WS*                 a bare decimal string: seconds ("90", "1.5")
              | WS* part (WS* part)* WS*        one or more parts ("15m", "1h30m", "1h 30m")
    part     := DECIMAL WS* UNIT                ("15m", "15 m", "250ms", "1.5h")
    DECIMAL  := DIGIT+ ("." DIGIT+)?            no sign, no exponent, no bare "." (".5", "5.")
    UNIT     := "d" | "h" | "m" | "s" | "ms"    86400, 3600, 60, 1 and 0.001 seconds; lower case

and two rules on the parts: they run from the largest unit to the smallest, each unit at most
once ("2d12h", "1m30s", "1s500ms"; not "30m1h", not "1m1m"), and only the last part may have a
fraction ("1h30.5m"; not "1.5h30m", which reads as a typo). The value is the exact sum of the
parts, rounded once to a float, so "1h30m250ms" is the float nearest 5400.25 s.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": Fraction(1, 1000)}
_ORDER = tuple(UNIT_SECONDS)  # largest first
_DECIMAL = r"\d+(?:\.\d+)?"
_BARE = re.compile(rf"\s*({_DECIMAL})\s*")
_PART = re.compile(rf"\s*({_DECIMAL})\s*(ms|d|h|m|s)")  # "ms" before "m": 1ms is a millisecond
_EXAMPLES = "such as 15m, 30s or 250ms"


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"1.5h"``, ``"250ms"``, ``"1h30m"``.

    ValueError with the reason otherwise; the module docstring is the grammar.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration {_EXAMPLES}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("must be a finite duration")
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if isinstance(value, str):
        bare = _BARE.fullmatch(value)
        total = _exact(bare.group(1), value) if bare else _parts(value)
        try:
            return float(total)
        except OverflowError:
            raise ValueError("must be a finite duration") from None
    raise ValueError(f"{value!r} is not a duration {_EXAMPLES}")


def _parts(text: str) -> Fraction:
    """The exact seconds of a string of parts, or ValueError naming the rule it breaks."""
    total, pos, last_rank, fraction_seen = Fraction(0), 0, -1, False
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        number, unit = m.group(1), m.group(2)
        rank = _ORDER.index(unit)
        if rank <= last_rank:
            raise ValueError(_refused(text, "units run from d down to ms, each at most once"))
        if fraction_seen:
            raise ValueError(_refused(text, "only the last part may have a fraction"))
        total += _exact(number, text) * UNIT_SECONDS[unit]
        pos, last_rank, fraction_seen = m.end(), rank, "." in number
    if last_rank < 0 or text[pos:].strip():
        raise ValueError(f"{text!r} is not a duration {_EXAMPLES}")
    return total


def _exact(number: str, text: str) -> Fraction:
    """``number`` as an exact fraction; a number of thousands of digits is no duration."""
    try:
        return Fraction(number)
    except ValueError:  # longer than int() reads (sys.get_int_max_str_digits)
        raise ValueError(f"a duration has no number of {len(number)} digits") from None


def _refused(text: str, rule: str) -> str:
    return f"{text!r} is not a duration {_EXAMPLES} ({rule})"
