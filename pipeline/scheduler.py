"""The long-running process: cycles on a cadence, never two at once, clean stop on a signal.

APScheduler's asyncio scheduler fires an interval trigger aligned on the cadence grid (a 15-minute
cadence polls at :00, :15, :30, :45 plus jitter), so that probes of many observers line up and a
lab scenario's change instants (placed off the grid) never straddle a poll. Under a scenario clock
the real interval is the scenario interval divided by the speed-up.

The scheduler only *announces* that a cycle is due; the cycle itself runs in a task this module
owns. APScheduler cancels the jobs it is running when it shuts down, which used to cancel the
cycle in flight on SIGTERM and lose its documents. Now a signal stops the cadence, the cycle in
flight is finished, written and flushed, and only past a bound derived from the configured
timeouts (``cycle_budget``) — or on a second signal — is it abandoned: cancelled before its run
state is committed, logged, and reported to the caller so the process exits non-zero.
A tick that arrives while a cycle runs waits for it (never two at once); in aligned mode a cycle
that starts too late for its grid slot is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from pipeline.clock import ScenarioClock
from pipeline.config import Config, Schedule
from pipeline.cycle import CycleRunner, CycleStats, cycle_budget

log = logging.getLogger(__name__)

# Time to write and flush a finished cycle, on top of the probes' own bound.
FLUSH_MARGIN_S = 5.0


@dataclass
class Outcome:
    """What a run of the scheduler did: how many cycles finished (and how many of them were
    not delivered), the last one, and whether one was abandoned.

    Counts rather than a list of every cycle's figures: a probe runs for months, and a list
    grew by one ``CycleStats`` (≈ 1 KiB) per cycle for nothing but the exit status.
    """

    done: int = 0
    undelivered: int = 0
    last: CycleStats | None = None
    abandoned: bool = False

    def add(self, stats: CycleStats) -> None:
        self.done += 1
        self.undelivered += 0 if stats.delivered else 1
        self.last = stats


@dataclass
class Stop:
    """Set by the first SIGTERM/SIGINT (finish the cycle in flight); ``hurry`` by a second one
    (abandon it now)."""

    requested: asyncio.Event = field(default_factory=asyncio.Event)
    hurry: asyncio.Event = field(default_factory=asyncio.Event)

    def signal(self) -> None:
        if self.requested.is_set():
            self.hurry.set()
        self.requested.set()


def shutdown_grace(config: Config) -> float:
    """How long a cycle in flight may still run after a stop was requested: the configured
    per-cycle budget (``pipeline.cycle.budget``, the one place it is derived) and the time to
    write and flush what it measured."""
    return cycle_budget(config) + FLUSH_MARGIN_S


@contextlib.contextmanager
def early_signals() -> Iterator[list[int]]:
    """SIGTERM/SIGINT remembered, not fatal, from process start until ``signals`` takes over:
    a stop requested while the locks are taken or the sinks open is then a clean stop too."""
    seen: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: seen.append(signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield seen
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals(stop: Stop, early: list[int] | None = None) -> Iterator[None]:
    """SIGTERM and SIGINT request a stop instead of killing the process."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    for _ in early or ():  # signals that came before the loop's handlers count as sent now
        stop.signal()
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def run_guarded(runner: CycleRunner, stop: Stop, grace: float) -> CycleStats | None:
    """One cycle that a stop request lets finish; ``None`` if it had to be abandoned."""
    cycle = asyncio.create_task(runner.run_cycle())
    stopped = asyncio.create_task(stop.requested.wait())
    try:
        await asyncio.wait({cycle, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not cycle.done():
            log.warning("stop requested: finishing the cycle in flight (up to %.0fs; a second "
                        "signal abandons it)", grace)
            hurry = asyncio.create_task(stop.hurry.wait())
            try:
                await asyncio.wait({cycle, hurry}, timeout=grace,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                hurry.cancel()
        if not cycle.done():
            cycle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cycle
            runner.tracker.rollback()  # back to what is committed
            why = "second signal" if stop.hurry.is_set() else \
                f"still running {grace:.0f}s after the stop request"
            if runner.tracker.journal() is None:
                log.error("the cycle in flight was abandoned (%s): its documents were not "
                          "written and its run state was not committed", why)
            else:
                log.error("the cycle in flight was abandoned while writing (%s): its run "
                          "summaries are journalled and re-sent at the next start", why)
            return None
        return cycle.result()
    finally:
        stopped.cancel()


@dataclass(frozen=True)
class Plan:
    """How a scheduled run goes: how many cycles (None: until stopped), aligned on the cadence
    grid or starting now, what to tell the caller, and the shutdown grace (None: derived from
    the configuration by ``shutdown_grace``)."""

    cycles: int | None = None
    align: bool = True
    on_cycle: Callable[[CycleStats], None] | None = None
    on_scheduled: Callable[[datetime], None] | None = None
    grace: float | None = None
    on_skip: Callable[[str], None] | None = None  # a slot not measured: "late", "clock_behind"


def _cadence(clock: ScenarioClock, sch: Schedule, align: bool, due: asyncio.Event
             ) -> tuple[AsyncIOScheduler, datetime]:
    """The APScheduler job that sets ``due`` on the cadence, and its first real instant."""

    async def tick() -> None:
        due.set()

    interval = clock.real_seconds(sch.interval_s)
    if align:
        first = clock.next_boundary(sch.interval_s)
        start = datetime.fromtimestamp(clock.real_at(first), UTC)
    else:
        # The first cycle runs now; the trigger's first fire would be one interval later.
        start = datetime.now(UTC)
        due.set()
    trigger = IntervalTrigger(seconds=interval, start_date=start,
                              jitter=clock.real_seconds(sch.jitter_s) or None, timezone=UTC)
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
    scheduler.add_job(tick, trigger, id="cycle", max_instances=1, coalesce=True,
                      misfire_grace_time=max(1, int(clock.real_seconds(sch.misfire_grace_s))))
    return scheduler, start


@dataclass
class _Loop:
    """The cycles of one scheduled run: wait for a tick or a stop, run one guarded cycle."""

    runner: CycleRunner
    clock: ScenarioClock
    stop: Stop
    due: asyncio.Event
    plan: Plan
    grace: float
    outcome: Outcome = field(default_factory=Outcome)

    async def _wait(self) -> bool:
        """True when a cycle is due, False when a stop was requested."""
        waiter = asyncio.create_task(self.due.wait())
        stopped = asyncio.create_task(self.stop.requested.wait())
        await asyncio.wait({waiter, stopped}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopped.cancel()
        return not self.stop.requested.is_set()

    async def _turn(self) -> bool:
        """One tick; False when the run is over (abandoned, or enough cycles)."""
        sch = self.runner.config.schedule
        self.due.clear()
        if self.plan.align and _too_late(self.clock, sch.interval_s,
                                         sch.misfire_grace_s + sch.jitter_s):
            self._skipped("late")
            return True
        try:
            stats = await run_guarded(self.runner, self.stop, self.grace)
        except Exception:  # a bug in one cycle must not end a probe that runs for months
            log.exception("a cycle failed; its run state is rolled back")
            self.runner.tracker.rollback()
            return True
        if stats is None:
            self.outcome.abandoned = True
            return False
        if stats.clock_behind_s:
            self._skipped("clock_behind")
            return True
        self.outcome.add(stats)
        if self.plan.on_cycle:
            self.plan.on_cycle(stats)
        return self.plan.cycles is None or self.outcome.done < self.plan.cycles

    def _skipped(self, reason: str) -> None:
        if self.plan.on_skip:
            self.plan.on_skip(reason)

    async def run(self) -> Outcome:
        while not self.stop.requested.is_set():
            if not await self._wait() or not await self._turn():
                break
        return self.outcome


async def run_scheduled(runner: CycleRunner, config: Config, clock: ScenarioClock,
                        plan: Plan = Plan(), stop: Stop | None = None) -> Outcome:
    """Run until ``plan.cycles`` cycles are done or a stop is requested (SIGTERM/SIGINT
    request it).

    A caller that passes its own ``stop`` installs the signal handlers itself (the run command
    does so before opening the sinks, so a signal during start-up is a clean stop as well)."""
    own_signals = stop is None
    stop = stop or Stop()
    grace = shutdown_grace(config) if plan.grace is None else plan.grace
    due = asyncio.Event()
    sch = config.schedule
    scheduler, start = _cadence(clock, sch, plan.align, due)
    with signals(stop) if own_signals else contextlib.nullcontext():
        scheduler.start()
        if plan.on_scheduled:
            plan.on_scheduled(clock.at_real(start.timestamp()))
        log.info("scheduled every %.3fs real (%ss scenario), first at %s",
                 clock.real_seconds(sch.interval_s), sch.interval_s, start.isoformat())
        try:
            return await _Loop(runner, clock, stop, due, plan, grace).run()
        finally:
            scheduler.shutdown(wait=False)


def _too_late(clock: ScenarioClock, interval_s: float, late_limit: float) -> bool:
    """APScheduler's own grace is whole real seconds, hours of scenario time when the clock is
    accelerated; a poll that late would no longer be the poll of its grid slot."""
    now = clock.now()
    slot = round(now.timestamp() / interval_s) * interval_s
    lateness = now.timestamp() - slot
    if lateness > late_limit:
        log.info("skipping a cycle %.0fs (scenario) behind its slot", lateness)
        return True
    return False
