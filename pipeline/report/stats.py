"""The statistics behind the report, each a small pure function over plain numbers.

Kept apart from the sources and the renderers so each figure can be tested against a hand
calculation, and so the estimators (scipy's Kaplan–Meier, Wilson intervals) sit in one place.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

_EPS = 1e-9


@dataclass(frozen=True)
class KaplanMeier:
    """A survival curve: ``survival[i]`` is S(t) just after ``times[i]`` (S = 1 before)."""

    times: tuple[float, ...]
    survival: tuple[float, ...]

    def quantile(self, p: float) -> float | None:
        """Smallest t with S(t) <= 1 - p, i.e. p of runs had ended by t; None if never reached.

        Open runs can keep the curve above 1 - p (the longest runs are still running): then the
        quantile is not known yet, and saying so beats reporting the longest observed length.
        """
        for t, s in zip(self.times, self.survival, strict=True):
            if s <= 1.0 - p + _EPS:
                return t
        return None


def kaplan_meier(events: Sequence[float], censored: Sequence[float]) -> KaplanMeier | None:
    """Kaplan–Meier estimate via ``scipy.stats.ecdf`` on right-censored data.

    ``events`` are lengths of runs that ended; ``censored`` lengths of runs still open (known
    to last at least that long). None when there are no runs at all.
    """
    if not events and not censored:
        return None
    if not events:  # nothing ended: S stays 1 over the observed range
        return KaplanMeier(times=(float(max(censored)),), survival=(1.0,))
    import numpy as np  # imported here: every `edgewatch` command would pay ~0.5 s otherwise
    from scipy import stats

    data = stats.CensoredData(uncensored=np.asarray(events, dtype=float),
                              right=np.asarray(censored, dtype=float))
    sf = stats.ecdf(data).sf
    return KaplanMeier(times=tuple(float(t) for t in sf.quantiles),
                       survival=tuple(float(s) for s in sf.probabilities))


def kaplan_meier_counts(events: Mapping[float, int],
                        censored: Mapping[float, int]) -> KaplanMeier | None:
    """The same estimate as ``kaplan_meier`` from counts per length instead of one value per
    run, so that memory grows with the distinct lengths, not with the runs.

    Follows scipy's convention exactly (the curve has a point at every observed length, ended
    or censored; a run censored at t is still at risk at t), so that both give identical
    figures; ``kaplan_meier`` stays as the reference in the tests.
    """
    n = sum(events.values()) + sum(censored.values())
    if n == 0:
        return None
    if not any(events.values()):
        return KaplanMeier(times=(float(max(censored)),), survival=(1.0,))
    times: list[float] = []
    survival: list[float] = []
    s = 1.0
    for t in sorted(set(events) | set(censored)):
        d = events.get(t, 0)
        s *= 1.0 - d / n
        n -= d + censored.get(t, 0)
        times.append(float(t))
        survival.append(s)
    return KaplanMeier(times=tuple(times), survival=tuple(survival))


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion, no continuity correction (Newcombe 1998,
    method 3), as a closed formula in the standard library's arithmetic: importing scipy for
    it cost every report process about a second. scipy's ``binomtest(...).proportion_ci(
    method="wilson")`` stays the reference (tests/report/test_report_stats.py), edges included:
    the bound is exactly 0 with no successes and exactly 1 with nothing else."""
    if trials <= 0:
        return None
    z = statistics.NormalDist().inv_cdf(0.5 + 0.5 * confidence)
    p = successes / trials
    denom = 2 * (trials + z * z)
    center = (2 * trials * p + z * z) / denom
    delta = z / denom * math.sqrt(4 * trials * p * (1 - p) + z * z)
    low = 0.0 if successes == 0 else center - delta
    high = 1.0 if successes == trials else center + delta
    return low, high


def histogram_percentile(buckets: Mapping[int, int], p: float) -> int | None:
    """Nearest-rank percentile of bucketed values: the lower edge of the bucket holding rank
    ceil(p·n). Identical whichever source produced the buckets."""
    n = sum(buckets.values())
    if n == 0:
        return None
    rank = max(1, math.ceil(p * n - _EPS))
    seen = 0
    for edge in sorted(buckets):
        seen += buckets[edge]
        if seen >= rank:
            return edge
    return max(buckets)


@dataclass(frozen=True)
class Ranked:
    """Entries ranked by how many successful checks they would have allowed."""

    entries: tuple[tuple[str, int], ...]
    total: int

    def smallest_for(self, target: float) -> int:
        """How many top entries cover at least ``target`` of the total (greedy is optimal:
        each check has exactly one address, so the k largest groups cover the most)."""
        if self.total == 0:
            return 0
        need = target * self.total
        covered = 0
        for i, (_, n) in enumerate(self.entries, 1):
            covered += n
            if covered + _EPS >= need:
                return i
        return len(self.entries)

    def share_of_top(self, k: int) -> float:
        if self.total == 0:
            return 0.0
        return sum(n for _, n in self.entries[:k]) / self.total


def rank(counts: Mapping[str, int]) -> Ranked:
    """Most checks first; ties broken by key so the order never depends on the source."""
    entries = tuple(sorted(((k, n) for k, n in counts.items() if n > 0),
                           key=lambda kv: (-kv[1], kv[0])))
    return Ranked(entries=entries, total=sum(n for _, n in entries))


def decay_shares(daily: Sequence[Counter], built_from: int) -> list[float | None]:
    """Share of each later day's successful checks allowed by a list built from the first
    ``built_from`` days (everything seen allowed in them). None for days without checks."""
    allowed: set[Hashable] = set()
    for day in daily[:built_from]:
        allowed.update(k for k, n in day.items() if n > 0)
    out: list[float | None] = []
    for day in daily[built_from:]:
        total = sum(day.values())
        out.append(None if total == 0 else sum(n for k, n in day.items() if k in allowed) / total)
    return out


def median(values: Iterable[float]) -> float | None:
    vals = sorted(values)
    if not vals:
        return None
    return float(statistics.median(vals))
