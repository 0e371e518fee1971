"""Answer rows → cycles: what every resolver answered in each cycle, per target and type.

A replay walks edgewatch's cycles in order. One cycle's queries share ``edgewatch.cycle.id``;
the cycle's instant is its earliest query. Rows are grouped per (target, record type) because a
firewall object holds the A and AAAA addresses of a name apart and an IPv4 answer can only be
let through by IPv4 entries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.report.answers import AnswerRow


@dataclass
class Cycle:
    """One cycle of one (target, type): each resolver's answer (at most one)."""

    id: str
    time: datetime
    answers: dict[str, AnswerRow] = field(default_factory=dict)


@dataclass
class Series:
    target: str
    qtype: str
    cycles: list[Cycle]

    @property
    def resolvers(self) -> list[str]:
        return sorted({name for c in self.cycles for name in c.answers})


def series_of(rows: Iterable[AnswerRow]) -> list[Series]:
    """Per (target, type), the cycles in time order."""
    grouped: dict[tuple[str, str], dict[str, Cycle]] = defaultdict(dict)
    for row in rows:
        cycles = grouped[(row.target, row.qtype)]
        cycle = cycles.get(row.cycle)
        if cycle is None:
            cycle = cycles[row.cycle] = Cycle(row.cycle, row.time)
        elif row.time < cycle.time:
            cycle.time = row.time
        cycle.answers.setdefault(row.resolver, row)
    return [Series(target, qtype, sorted(cycles.values(), key=lambda c: (c.time, c.id)))
            for (target, qtype), cycles in sorted(grouped.items())]


def median_gap_s(series: Iterable[Series]) -> float | None:
    """The sampling interval: the median gap between consecutive cycles, to the second (a
    cadence is configured in whole seconds; the recorded instants wander with query latency).
    None for fewer than two cycles."""
    gaps = sorted((b.time - a.time).total_seconds()
                  for s in series for a, b in zip(s.cycles, s.cycles[1:], strict=False))
    if not gaps:
        return None
    mid = len(gaps) // 2
    return float(round(gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2))
