"""Expected report figures, computed straight from the synthetic history.

Deliberately independent of ``pipeline.report``: it walks the emitted documents and the runs
one by one (no grouping rows, no scipy), with textbook formulas, so a figure that agrees with the
report was reached twice by different routes.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from report_synth import NET, STEP_S, History, Run, Segment

Z95 = 1.959963984540054
DAY = timedelta(days=1)


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def km_quantile(events: list[float], censored: list[float], p: float) -> float | None:
    """Product-limit estimate; censored values at an event time count as still at risk."""
    s = 1.0
    for t in sorted(set(events)):
        at_risk = sum(1 for v in events + censored if v >= t)
        d = events.count(t)
        s *= 1 - d / at_risk
        if s <= 1 - p + 1e-9:
            return t
    return None


def wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 / denom * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    return centre - half, centre + half


class Truth:
    """The figures the report must show for one selection of the history."""

    def __init__(self, history: History, start: datetime | None = None,
                 end: datetime | None = None, resolvers: tuple[str, ...] = (),
                 observers: tuple[str, ...] = ("probe-1",),
                 targets: tuple[str, ...] = ("api.example.test",)) -> None:
        self.h = history
        self.resolvers_filter = resolvers

        def keep(observer: str, target: str, resolver: str) -> bool:
            return ((not observers or observer in observers)
                    and (not targets or target in targets)
                    and (not resolvers or resolver in resolvers))

        self.docs = [d for d in history.checks
                     if keep(d["observer.name"], d["dns.question.name"],
                             d["edgewatch.resolver.name"])
                     and (start is None or parse(d["@timestamp"]) >= start)
                     and (end is None or parse(d["@timestamp"]) < end)]
        stamps = [parse(d["@timestamp"]) for d in self.docs]
        self.origin = start or min(stamps)
        self.last = max(stamps)
        self.days = int((self.last - self.origin) / DAY) + 1
        self.runs: list[Run] = [
            r for r in history.runs.values()
            if keep(r.observer, r.target, r.resolver)
            and (end is None or r.start < end)
            and (start is None or r.last_seen >= start)]

    # -- selections ---------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted({d["edgewatch.resolver.name"] for d in self.docs})

    def docs_of(self, resolver: str | None) -> list[dict[str, Any]]:
        return [d for d in self.docs
                if resolver is None or d["edgewatch.resolver.name"] == resolver]

    def runs_of(self, resolver: str | None) -> list[Run]:
        return [r for r in self.runs if resolver is None or r.resolver == resolver]

    # -- figures ------------------------------------------------------------------------

    def counts(self, resolver: str | None) -> dict[str, Any]:
        docs = self.docs_of(resolver)
        with_ip = [d for d in docs if "destination.ip" in d]
        ips = {d["destination.ip"] for d in with_ip}
        return {
            "documents": len(docs),
            "successful": sum(d["event.outcome"] == "success" for d in docs),
            "queries": len({(d["edgewatch.check.id"], d["edgewatch.resolver.name"]) for d in docs}),
            "addresses": len(ips),
            "prefix24s": len({NET[ip][0] for ip in ips}),
            "prefixes": len({NET[ip][1] for ip in ips}),
            "asns": len({NET[ip][2] for ip in ips}),
            "edge_hostnames": sorted({NET[ip][3] for ip in ips if NET[ip][3]}),
            "daily_addresses": [
                len({d["destination.ip"] for d in with_ip if self.day(d) == k})
                for k in range(self.days)],
        }

    def day(self, doc: dict[str, Any]) -> int:
        return int((parse(doc["@timestamp"]) - self.origin) / DAY)

    def run_counts(self, resolver: str | None) -> tuple[int, int]:
        runs = self.runs_of(resolver)
        return len(runs), sum(r.open for r in runs)

    def run_quantiles(self, resolver: str | None, p: float, interval: float = STEP_S
                      ) -> tuple[float | None, float | None, float | None]:
        """(point, lower bound, upper bound) of the p-quantile of run length: the estimate
        from lengths as sampled, and the same estimate with every length shifted by one
        sampling interval down (not below 0) and up."""
        runs = self.runs_of(resolver)
        closed = [(r.end - r.start).total_seconds() for r in runs if not r.open]
        censored = [(r.last_seen - r.start).total_seconds() for r in runs if r.open]
        point = km_quantile(closed, censored, p)
        if point is None:
            return None, None, None
        down = km_quantile([x - interval for x in closed], [x - interval for x in censored], p)
        up = km_quantile([x + interval for x in closed], [x + interval for x in censored], p)
        return point, max(0.0, down), up

    def true_segment_quantile(self, resolver: str, p: float) -> float | None:
        """The same quantile from the scenario's own segments (the last one censored)."""
        segs: list[Segment] = [s for s in self.h.segments if s.resolver == resolver]
        last = max(s.end for s in segs)
        events = [(s.end - s.start) * STEP_S for s in segs if s.end < last]
        censored = [(s.end - s.start - 1) * STEP_S for s in segs if s.end == last]
        return km_quantile(events, censored, p)

    def failures(self, resolver: str | None) -> dict[str, tuple[int, int]]:
        """kind → (failures, trials); DNS kinds per query, the rest per address check."""
        docs = self.docs_of(resolver)
        queries = self.counts(resolver)["queries"]
        address_checks = sum("destination.ip" in d for d in docs)
        kinds = Counter(d["error.type"] for d in docs if "error.type" in d)
        out = {k: (n, queries if k.startswith("dns.") else address_checks)
               for k, n in kinds.items()}
        out["dns (any)"] = (sum(n for k, n in kinds.items() if k.startswith("dns.")), queries)
        out["address check (any)"] = (
            sum(1 for d in docs if "destination.ip" in d and d["event.outcome"] != "success"),
            address_checks)
        return out

    def timing(self, resolver: str | None, field: str) -> tuple[int, list[float]]:
        values = sorted(d[field] // 100 * 100 for d in self.docs_of(resolver) if field in d)
        return len(values), [values[max(1, math.ceil(p * len(values))) - 1] / 1000
                             for p in (0.5, 0.9, 0.99)]

    def ok_by(self, by: str) -> Counter:
        index = {"ip": None, "prefix24": 0, "prefix": 1}[by]
        counts: Counter = Counter()
        for d in self.docs:
            if d["event.outcome"] == "success":
                ip = d["destination.ip"]
                counts[ip if index is None else NET[ip][index]] += 1
        return counts

    def minimal_cover(self, by: str, target: float) -> tuple[int, float]:
        """Brute force over every subset size: fewest entries reaching the target, and the
        best share that many entries can reach."""
        counts = self.ok_by(by)
        total = sum(counts.values())
        for k in range(1, len(counts) + 1):
            best = max(sum(c) for c in itertools.combinations(counts.values(), k))
            if best >= target * total - 1e-9:
                return k, best / total
        raise AssertionError("unreachable")

    def decay(self, by: str, built_from: int) -> list[float | None]:
        index = {"ip": None, "prefix24": 0, "prefix": 1}[by]

        def key(d: dict[str, Any]) -> str:
            ip = d["destination.ip"]
            return ip if index is None else NET[ip][index]

        ok = [d for d in self.docs if d["event.outcome"] == "success"]
        allowed = {key(d) for d in ok if self.day(d) < built_from}
        out: list[float | None] = []
        for k in range(built_from, self.days):
            day = [d for d in ok if self.day(d) == k]
            out.append(sum(key(d) in allowed for d in day) / len(day) if day else None)
        return out

    def stable(self, resolver: str | None) -> list[tuple[str, int, float]]:
        """(ip, runs, presence seconds), most present first, then fewest runs, then ip."""
        runs: dict[str, list[Run]] = defaultdict(list)
        for r in self.runs_of(resolver):
            runs[r.ip].append(r)
        rows = [(ip, len(rs), sum(((r.end or r.last_seen) - r.start).total_seconds()
                                  for r in rs)) for ip, rs in runs.items()]
        return sorted(rows, key=lambda x: (-x[2], x[1], x[0]))
