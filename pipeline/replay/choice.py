"""Resolver choice (issue 15, item 2): which resolver should the firewall ask?

The trivial model (refresh every cycle, no cap, no hold) is replayed with every configured
resolver as the firewall's and every other one as a client: the matrix says, for each pair,
the share of the client's successful answers that the firewall's answer of the same cycle
would have blocked partly or fully. The recommendation is the firewall resolver with the
smallest share over all its clients' checks together (ties: fewest fully blocked, then name).

Beside it, the daily Jaccard overlap per pair: on day d, |A ∩ B| / |A ∪ B| where A and B are
the addresses each resolver answered that day (successful answers only; no value for a day
neither answered).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

from pipeline.replay.fqdn import every_cycle, replay_fqdn
from pipeline.replay.series import Series

DAY_S = 86400


@dataclass
class Cell:
    firewall: str
    client: str
    checks: int
    partly: int
    fully: int

    @property
    def share(self) -> float | None:
        return (self.partly + self.fully) / self.checks if self.checks else None


@dataclass
class Choice:
    resolvers: list[str]
    cells: list[Cell]
    best: str | None
    best_share: float | None
    jaccard: list[dict]  # {"a", "b", "daily": [float|None], "mean": float|None}

    def cell(self, firewall: str, client: str) -> Cell | None:
        return next((c for c in self.cells if c.firewall == firewall and c.client == client),
                    None)


def resolver_choice(series: list[Series], origin: datetime) -> Choice:
    """The matrix and the Jaccard overlaps over every (target, type) series together."""
    names = sorted({n for s in series for n in s.resolvers})
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for s in series:
        for fw in names:
            clients = [c for c in names if c != fw]
            walk = replay_fqdn(every_cycle(fw), s.cycles, clients)
            for c, res in walk.clients.items():
                t = totals[(fw, c)]
                t[0] += res.checks
                t[1] += res.partly
                t[2] += res.fully
    cells = [Cell(fw, c, *totals[(fw, c)]) for fw in names for c in names if c != fw]
    best, best_share = _best(names, cells)
    return Choice(resolvers=names, cells=cells, best=best, best_share=best_share,
                  jaccard=daily_jaccard(series, names, origin))


def _best(names: list[str], cells: list[Cell]) -> tuple[str | None, float | None]:
    scored = []
    for fw in names:
        mine = [c for c in cells if c.firewall == fw]
        checks = sum(c.checks for c in mine)
        if checks:
            blocked = sum(c.partly + c.fully for c in mine)
            scored.append((blocked / checks, sum(c.fully for c in mine) / checks, fw))
    if not scored:
        return None, None
    share, _, fw = min(scored)
    return fw, share


def daily_jaccard(series: list[Series], names: list[str], origin: datetime) -> list[dict]:
    seen: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    days = 0
    for s in series:
        for cycle in s.cycles:
            day = int((cycle.time - origin).total_seconds() // DAY_S)
            days = max(days, day + 1)
            for name, answer in cycle.answers.items():
                if answer.ok:
                    seen[name][day].update(answer.addresses)
    out = []
    for a, b in combinations(names, 2):
        daily = [_jaccard(seen[a].get(d, set()), seen[b].get(d, set())) for d in range(days)]
        values = [v for v in daily if v is not None]
        out.append({"a": a, "b": b, "daily": daily,
                    "mean": sum(values) / len(values) if values else None})
    return out


def _jaccard(a: set[str], b: set[str]) -> float | None:
    union = a | b
    return len(a & b) / len(union) if union else None
