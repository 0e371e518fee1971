"""One cycle: every target through every resolver, every distinct address checked once.

A cycle reads as three steps, one module each:

1. ``observe`` (pipeline/cycle/observe.py): the probes' answers — queries, connects, PTRs;
2. ``record`` (pipeline/cycle/record.py): run state and documents made of those answers;
3. ``deliver`` (pipeline/cycle/deliver.py): commit, write and flush, or roll back.

``CycleRunner`` holds what outlives a cycle (the bound probes, the run tracker, the sinks, the
netinfo table) and wraps the three steps with what is not a step: the clock check that skips a
cycle whose clock jumped back, and the stats (counts, real and CPU time) logged per cycle.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.allowlists import DeployedLists
from pipeline.clock import ScenarioClock
from pipeline.config import Config
from pipeline.cycle.budget import check_budget, cycle_budget
from pipeline.cycle.deliver import deliver, resend_journal
from pipeline.cycle.observe import CRASHED, Clock, Observations, observe
from pipeline.cycle.record import Recorded, record
from pipeline.documents import iso
from pipeline.ids import cycle_id
from pipeline.probe.netinfo import NetInfo, NetinfoTable, prefix24
from pipeline.probe.probes import Probes
from pipeline.runs import RunTracker
from pipeline.sinks.base import Sink

__all__ = ["CRASHED", "Clock", "CycleRunner", "CycleStats", "Probes", "check_budget",
           "cycle_budget", "cycle_id"]

log = logging.getLogger(__name__)


@dataclass
class CycleStats:
    started: datetime
    real_seconds: float = 0.0
    cpu_seconds: float = 0.0
    queries: int = 0
    checks: int = 0
    documents: int = 0
    addresses: int = 0
    connects: int = 0
    skipped: int = 0  # address documents whose connect check the address cap skipped
    failures: Counter[str] = field(default_factory=Counter)
    delivered: bool = True
    clock_behind_s: float = 0.0  # > 0: skipped, the clock read before the last recorded instant

    def count(self, obs: Observations, rec: Recorded) -> None:
        """The figures of one observed and recorded cycle."""
        self.queries, self.addresses = len(obs.queries), len(obs.addresses())
        self.connects, self.checks, self.skipped = len(obs.connects), rec.checks, rec.skipped
        self.documents, self.failures = len(rec.records), rec.failures


@contextmanager
def _timed(stats: CycleStats) -> Iterator[None]:
    """Real and CPU seconds of the block, into ``stats``."""
    cpu0, real0 = time.process_time(), time.perf_counter()
    try:
        yield
    finally:
        stats.real_seconds = time.perf_counter() - real0
        stats.cpu_seconds = time.process_time() - cpu0


def _ms(ts: datetime) -> datetime:
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


class CycleRunner:
    """Long-lived probe state (bound probes, caches, run tracker) and the cycle itself."""

    def __init__(self, config: Config, clock: ScenarioClock | Clock, tracker: RunTracker,
                 sinks: Sequence[Sink], probes: Probes | None = None) -> None:
        self.config = config
        self.clock = clock
        self.probes = (probes or Probes()).bind(config, now=lambda: self.clock.now().timestamp())
        self.tracker = tracker
        self.sinks = list(sinks)
        self.netinfo = NetinfoTable.load(config.netinfo_table) if config.netinfo_table else None
        # the lists in force; validated with the config, re-read before a cycle when changed
        self.allowlists = DeployedLists((a.name, a.file) for a in config.allowlists)
        self.cycles = 0
        self._last_start: datetime | None = None

    async def open(self) -> None:
        for sink in self.sinks:
            await sink.open()
        await resend_journal(self.tracker, self.sinks)

    async def close(self) -> None:
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception:  # a failing sink must not keep the others from closing
                log.exception("closing sink %s failed", sink.name)
        self.tracker.close()

    def _clock_behind(self, now: datetime) -> float:
        """Seconds the clock reads at or before the latest instant already recorded (0 if not).

        That instant is this process's previous cycle or the newest sighting of an open run (so
        it survives a restart). A clock that jumped backward (an NTP step, a scenario clock
        restarted with an earlier start) would otherwise reuse a cycle's ids and give runs a
        sighting before their last one.
        """
        floor = self._last_start
        for run in self.tracker.open_runs():
            if floor is None or run.last_seen > floor:
                floor = run.last_seen
        if floor is None or _ms(now) > _ms(floor):  # ids and stamps have ms resolution
            return 0.0
        return (floor - now).total_seconds() or 0.001

    def _netinfo(self, address: str) -> NetInfo:
        if self.netinfo is not None:
            return self.netinfo.lookup(address)
        return NetInfo(address, None, None, None, prefix24(address))

    async def run_cycle(self) -> CycleStats:
        started = self.clock.now()
        stats = CycleStats(started=started)
        with _timed(stats):
            behind = self._clock_behind(started)
            if behind:
                # Measuring now would stamp documents out of order; the cycle is skipped
                # (nothing written, run state untouched) until the clock passes the last
                # recorded instant. A forward jump needs nothing: runs measured across it are
                # a long gap, as they are.
                log.warning("skipping the cycle at %s: the clock jumped back %.3fs behind the "
                            "last recorded instant", iso(started), behind)
                stats.clock_behind_s = behind
                return stats
            self.allowlists.refresh()
            obs = await observe(self.probes, self.config, self.clock, started)
            recorded = record(obs, self.tracker, self.config, self._netinfo, self.allowlists)
            stats.count(obs, recorded)
            stats.delivered = await deliver(self.tracker, self.sinks, recorded.records)
            if stats.delivered:
                for event in recorded.events:  # one warning per run, as its event
                    log.warning("allowlist miss: %s", event.doc["message"])
            self._last_start = started
            self.cycles += 1
        log.info("cycle %s at %s: %d queries, %d addresses, %d connects, %d capped, "
                 "%d documents, %.3fs (cpu %.3fs)",
                 self.cycles, iso(started), stats.queries, stats.addresses, stats.connects,
                 stats.skipped, stats.documents, stats.real_seconds, stats.cpu_seconds)
        return stats
