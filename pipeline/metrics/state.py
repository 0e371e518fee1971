"""Everything the metrics report, held in one place and changed one cycle at a time.

The cycle's figures are taken from its documents as the sinks are written (``pending``) and
published together with the cycle's own stats when the cycle is over (``publish``), under one
lock: a scrape sees a cycle entirely or not at all, so ``edgewatch_cycles_total`` and every
per-cycle count always describe the same cycles. What the sinks know (spool backlog, dead
letters, the last delivery) is read at scrape time, since it changes between cycles.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.metrics.figures import CheckKey, CycleFigures, ListKey, Pair
from pipeline.metrics.spool_age import SpoolAge

# Upper bounds of the cycle duration histogram, in seconds: a healthy cycle takes well under a
# second against nearby resolvers and up to the slowest timeout against dead ones.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass
class Totals:
    """The counters: since this process started, never reset."""

    cycles: Counter[bool] = field(default_factory=Counter)  # by delivered
    skipped: Counter[str] = field(default_factory=Counter)  # by reason
    checks: Counter[CheckKey] = field(default_factory=Counter)
    denied: Counter[ListKey] = field(default_factory=Counter)
    duration_buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    duration_sum: float = 0.0


@dataclass
class LastCycle:
    """The gauges that describe the last finished cycle."""

    figures: CycleFigures = field(default_factory=CycleFigures)
    duration_s: float | None = None
    lateness_s: float | None = None
    end: float | None = None  # unix time
    delivered: bool | None = None


class MetricsState:
    """The one copy of every figure; ``lock`` guards publishing against a scrape."""

    def __init__(self, *, interval_real_s: float, speed: float, local_sinks: tuple[str, ...],
                 pairs: tuple[Pair, ...], started_at: float | None = None) -> None:
        self.lock = threading.Lock()
        self.started_at = time.time() if started_at is None else started_at
        self.interval_real_s = interval_real_s
        self.speed = speed
        self.local_sinks = local_sinks  # sinks whose delivery is the cycle's own write
        self.pairs = pairs
        self.totals = Totals()
        self.last = LastCycle(end=self.started_at)
        self.last_local_delivery: dict[str, float] = {}
        self.grid_origin: datetime | None = None  # the first scheduled slot (scenario time)
        self.spool_age = SpoolAge(self.started_at)
        self.es: Any = None  # the Elasticsearch sink, when there is one
        self._pending: CycleFigures | None = None

    def pending(self, figures: CycleFigures) -> None:
        """The figures of the cycle being written; published by ``publish``."""
        self._pending = figures

    def lateness(self, started: datetime, interval_s: float) -> float | None:
        """Real seconds between the cycle's start and its slot on the grid (None before the
        grid is known: ``run --once``). The slot is the nearest, as the scheduler decides which
        slot a cycle belongs to; a cycle a hair early reads 0."""
        if self.grid_origin is None:
            return None
        offset = (started - self.grid_origin).total_seconds()
        late = offset - round(offset / interval_s) * interval_s
        return max(0.0, late) / self.speed

    def publish(self, stats: Any, interval_s: float, now: float | None = None) -> None:
        """One finished cycle (``CycleStats``): its figures and stats become visible at once."""
        now = time.time() if now is None else now
        figures, self._pending = self._pending or CycleFigures(), None
        with self.lock:
            t = self.totals
            t.cycles[bool(stats.delivered)] += 1
            t.checks.update(figures.checks)
            t.denied.update(figures.denied)
            for i, bound in enumerate(DURATION_BUCKETS):
                t.duration_buckets[i] += stats.real_seconds <= bound
            t.duration_sum += stats.real_seconds
            self.last = LastCycle(figures, stats.real_seconds,
                                  self.lateness(stats.started, interval_s), now,
                                  bool(stats.delivered))
            if stats.delivered:
                for sink in self.local_sinks:
                    self.last_local_delivery[sink] = now
            if self.es is not None:
                self.spool_age.pushed(now, self.es.stats.spooled,
                                      self.es.spool.pending_entries)

    def first_slot(self, scenario: datetime, real: float) -> None:
        """The cadence's first slot: the origin of the grid, and the "last cycle end" until
        the first cycle ends (a daemon whose first cycle never ends is late from then on)."""
        with self.lock:
            self.grid_origin = scenario
            if self.last.duration_s is None:
                self.last = LastCycle(end=real)

    def skipped(self, reason: str) -> None:
        with self.lock:
            self.totals.skipped[reason] += 1
