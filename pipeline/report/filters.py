"""What part of the stored evidence a report looks at.

One small value object shared by every source, so the Elasticsearch query and the ndjson scan
apply exactly the same selection and the two can be compared figure for figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
    (``edgewatch.run.start < end`` and ``edgewatch.run.last_seen >= start``) and match the
    same names.

    ``not_before`` / ``not_after`` are the plausible window (``pipeline.report.plausible``):
    checks dated outside it, and runs not wholly inside it, are left out as a broken clock's
    doing. They narrow the selection without being part of what the user asked for, so
    ``describe`` leaves them out.
    """

    start: datetime | None = None
    end: datetime | None = None
    targets: tuple[str, ...] = field(default_factory=tuple)
    observers: tuple[str, ...] = field(default_factory=tuple)
    resolvers: tuple[str, ...] = field(default_factory=tuple)
    not_before: datetime | None = None
    not_after: datetime | None = None
    #: one address family: ("A",) = IPv4, ("AAAA",) = IPv6 (``--family``); empty = both
    record_types: tuple[str, ...] = field(default_factory=tuple)

    @property
    def by_keyword(self) -> bool:
        """Whether any keyword part is set (sources skip the per-document test otherwise)."""
        return bool(self.targets or self.observers or self.resolvers or self.record_types)

    def names_match(self, target: str | None, observer: str | None, resolver: str | None,
                    record_type: str | None = None) -> bool:
        """The keyword part of the selection, for sources that filter in Python."""
        return (
            (not self.targets or target in self.targets)
            and (not self.observers or observer in self.observers)
            and (not self.resolvers or resolver in self.resolvers)
            and (not self.record_types or record_type in self.record_types)
        )

    def time_match(self, ts: datetime) -> bool:
        lower, upper = self.lower, self.upper
        return (lower is None or ts >= lower) and (upper is None or ts < upper)

    @property
    def lower(self) -> datetime | None:
        """The first instant a selected check may carry: ``start`` or the plausible floor."""
        bounds = [t for t in (self.start, self.not_before) if t is not None]
        return max(bounds) if bounds else None

    @property
    def upper(self) -> datetime | None:
        """The exclusive last instant: ``end`` or the plausible ceiling, whichever is first."""
        bounds = [t for t in (self.end, self.not_after) if t is not None]
        return min(bounds) if bounds else None

    def run_overlaps(self, start: datetime, last_seen: datetime) -> bool:
        """A run is asked for when it overlaps ``[start, end)``."""
        return not ((self.end is not None and start >= self.end)
                    or (self.start is not None and last_seen < self.start))

    def run_plausible(self, start: datetime, last_seen: datetime) -> bool:
        """A run counts only when all of it lies in the plausible window."""
        return not ((self.not_before is not None and start < self.not_before)
                    or (self.not_after is not None and last_seen >= self.not_after))

    def unbounded(self) -> Filters:
        """The same selection without the plausible window (to count what it left out)."""
        return replace(self, not_before=None, not_after=None)

    def describe(self) -> dict[str, object]:
        """The selection as plain values, for report headers and the JSON output."""
        out: dict[str, object] = {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "targets": list(self.targets),
            "observers": list(self.observers),
            "resolvers": list(self.resolvers),
        }
        if self.record_types:  # only when asked: older readers of the JSON see no new key
            out["record_types"] = list(self.record_types)
        return out


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
