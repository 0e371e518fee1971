"""What part of the stored evidence a report looks at.

One small value object shared by every source, so the Elasticsearch query and the ndjson scan
apply exactly the same selection and the two can be compared figure for figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


def parse_time(value: str) -> datetime:
    """RFC 3339 or a bare date (``2026-03-02`` = its UTC midnight); naive means UTC."""
    ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


@dataclass(frozen=True)
class Filters:
    """Checks with ``start <= @timestamp < end`` for the named targets, observers and resolvers.

    Empty tuples mean "all". Runs are selected when they overlap the window
    (``run.start < end`` and ``run.last_seen >= start``) and match the same names.
    """

    start: datetime | None = None
    end: datetime | None = None
    targets: tuple[str, ...] = field(default_factory=tuple)
    observers: tuple[str, ...] = field(default_factory=tuple)
    resolvers: tuple[str, ...] = field(default_factory=tuple)

    def names_match(self, target: str | None, observer: str | None, resolver: str | None) -> bool:
        """The keyword part of the selection, for sources that filter in Python."""
        return (
            (not self.targets or target in self.targets)
            and (not self.observers or observer in self.observers)
            and (not self.resolvers or resolver in self.resolvers)
        )

    def time_match(self, ts: datetime) -> bool:
        return (self.start is None or ts >= self.start) and (self.end is None or ts < self.end)

    def describe(self) -> dict[str, object]:
        """The selection as plain values, for report headers and the JSON output."""
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "targets": list(self.targets),
            "observers": list(self.observers),
            "resolvers": list(self.resolvers),
        }


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
