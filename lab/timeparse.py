"""Durations and instants as written in scenario files and on the command line.

Scenario files speak in human durations ("15m", "3d7h7m30s"; weeks and a sign too) so that
schedules read like the study's notes; the edgewatch configs the lab writes use the narrower
grammar of the pipeline (``format_duration``). Everything inside the lab works in float seconds
(scenario epoch seconds for instants), which keeps the ground truth a matter of integer-ish
arithmetic, not datetime objects.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_CONFIG_UNITS = ("d", "h", "m", "s", "ms")  # the edgewatch config has no "w"; largest first
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


def parse_duration(text: str | int | float) -> float:
    """Parse "15m", "1h30m", "3d7m30s", "250ms" or a bare number of seconds into seconds."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        return float(text)
    s = text.strip().replace(" ", "")
    if not s:
        raise ValueError("empty duration")
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        return sign * float(s)
    pos = 0
    total = 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            raise ValueError(f"not a duration: {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"not a duration: {text!r}")
    return sign * total


def format_duration(seconds: float) -> str:
    """Seconds as the edgewatch config writes them: 5400 -> "1h30m", 0.25 -> "250ms", 0 -> "0s".

    The output keeps to the pipeline's duration grammar (pipeline/config/duration.py; the lab
    imports nothing from the pipeline, so tests/lab/test_lab_ewconfig.py checks the two agree):
    whole-number parts from d down to ms, each unit at most once, no sign, no fraction. What that
    grammar cannot say exactly (negative, not finite, not a whole number of milliseconds) raises
    ValueError instead of being rounded into a different interval.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{seconds!r} s cannot be written as a config duration")
    ms = round(seconds * 1000)
    if ms / 1000 != seconds:
        raise ValueError(f"{seconds!r} s is not a whole number of milliseconds")
    out = []
    for unit in _CONFIG_UNITS:
        size = _UNIT_MS[unit]
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out) or "0s"


def to_epoch(value: datetime) -> float:
    """Aware datetime -> unix seconds; naive datetimes are taken as UTC (scenario files are UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def from_epoch(seconds: float) -> datetime:
    """Unix seconds -> aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def parse_instant(text: str) -> datetime:
    """ISO 8601 with "Z" accepted; naive means UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime | float) -> str:
    """Compact UTC ISO form with a Z, as the edgewatch config and truth output use."""
    if not isinstance(value, datetime):
        value = from_epoch(value)
    value = value.astimezone(UTC)
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")
