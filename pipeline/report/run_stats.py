"""What the report needs of the IP runs, folded into groups instead of one row per run.

The run figures (Kaplan–Meier lengths, the sampling interval, the most stable addresses) used
to read every run summary: memory and transfer grew with the number of runs (≈ 300,000 in a
10M-check history). They need much less:

* run lengths **bucketed by the sampling interval**, per resolver, with the censoring flag
  (``RunLengthRow``): lengths are ``end − start`` of sampled sightings, i.e. a multiple of the
  interval give or take scheduling jitter, so rounding each to the nearest multiple changes
  nothing when lengths are multiples and moves each by at most half an interval otherwise
  (docs/REPORT.md states what that does to the quantiles);
* per (resolver, address) the number of runs and their summed length (``RunAddressRow``);
* a sample of closed runs' ``duration − observed`` gaps for the interval's median.

Elasticsearch computes the first two with composite aggregations; the ndjson store folds its
run summaries with ``fold_runs`` below, so both sources give identical figures by construction.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.report.rows import RunAddressRow, RunLengthRow, RunRow

# Closed runs whose gaps make the sampling interval's median: the ones with the smallest run
# ids (hashes, so an arbitrary but reproducible sample), exact for smaller histories.
GAP_SAMPLE = 10_000


def bucket_length(length_s: float, interval_s: float) -> float:
    """``length_s`` rounded to the nearest multiple of ``interval_s`` (halves round up)."""
    return math.floor(length_s / interval_s + 0.5) * interval_s


def half_bucket_length(key: float, interval_s: float) -> float:
    """The rounded length of a histogram bucket of width ``interval_s / 2`` keyed ``key``.

    A composite ``histogram`` source has no offset, so it cannot round to the nearest multiple
    directly; floor(x) determines floor((x + 1) / 2) for every real x, so half-width buckets
    j = floor(2·length / interval) give the nearest multiple k = (j + 1) // 2 exactly."""
    j = round(key / (interval_s / 2))
    return ((j + 1) // 2) * interval_s


def gap_sample(runs: Iterable[RunRow], limit: int = GAP_SAMPLE) -> list[float]:
    """``duration − observed`` of the ``limit`` closed runs with the smallest ids."""
    closed = sorted((r.run_id, r.duration_s - r.observed_s) for r in runs if not r.open)
    return [gap for _, gap in closed[:limit]]


def fold_runs(runs: Iterable[RunRow], interval_s: float
              ) -> tuple[list[RunLengthRow], list[RunAddressRow]]:
    """The grouped rows of ``runs``: what Elasticsearch's aggregations return for them."""
    lengths: Counter = Counter()
    per_ip: Counter = Counter()
    presence: Counter = Counter()
    for r in runs:
        lengths[(r.resolver, r.open, bucket_length(r.duration_s, interval_s))] += 1
        per_ip[(r.resolver, r.ip)] += 1
        presence[(r.resolver, r.ip)] += r.duration_s
    return ([RunLengthRow(resolver=res, open=o, length_s=t, runs=n)
             for (res, o, t), n in lengths.items()],
            [RunAddressRow(resolver=res, ip=ip, runs=n, duration_s=presence[(res, ip)])
             for (res, ip), n in per_ip.items()])


@dataclass
class RunStats:
    """One resolver's (or all resolvers') runs as the report's figures need them."""

    closed: Counter = field(default_factory=Counter)  # rounded length → runs that ended
    censored: Counter = field(default_factory=Counter)  # rounded length → runs still open
    count: Counter = field(default_factory=Counter)  # ip → runs
    presence: Counter = field(default_factory=Counter)  # ip → summed length, seconds
    seen_by: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    @property
    def runs(self) -> int:
        return sum(self.closed.values()) + sum(self.censored.values())

    def add_length(self, row: RunLengthRow) -> None:
        (self.censored if row.open else self.closed)[row.length_s] += row.runs

    def add_address(self, row: RunAddressRow) -> None:
        self.count[row.ip] += row.runs
        self.presence[row.ip] += row.duration_s
        self.seen_by[row.ip].add(row.resolver)


def fold_into(stats: dict[str, RunStats], everyone: str, lengths: Iterable[RunLengthRow],
              addresses: Iterable[RunAddressRow]) -> None:
    """Add the rows to their resolver's ``RunStats`` and to ``stats[everyone]``. A
    ``RunStats`` is made once per name, not per row (``setdefault`` would build a throwaway
    one, four counters and a dict, for each of the 82,000 rows of a 10M-check report's builds)."""
    def of(name: str) -> RunStats:
        found = stats.get(name)
        if found is None:
            found = stats[name] = RunStats()
        return found

    for row in lengths:
        for name in (row.resolver, everyone):
            of(name).add_length(row)
    for arow in addresses:
        for name in (arow.resolver, everyone):
            of(name).add_address(arow)
