"""The long-running process: cycles on a cadence, never two at once, clean stop on a signal.

APScheduler's asyncio scheduler fires an interval trigger aligned on the cadence grid (a 15-minute
cadence polls at :00, :15, :30, :45 plus jitter), so that probes of many observers line up and a
lab scenario's change instants (placed off the grid) never straddle a poll. ``max_instances=1``
with coalescing means a cycle that overruns delays the next instead of stacking them. Under a
scenario clock the real interval is the scenario interval divided by the speed-up.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from pipeline.clock import ScenarioClock
from pipeline.config import Config
from pipeline.cycle import CycleRunner, CycleStats

log = logging.getLogger(__name__)


async def run_scheduled(
    runner: CycleRunner,
    config: Config,
    clock: ScenarioClock,
    cycles: int | None = None,
    on_cycle: Callable[[CycleStats], None] | None = None,
    stop: asyncio.Event | None = None,
    align: bool = True,
    on_scheduled: Callable[[datetime], None] | None = None,
) -> list[CycleStats]:
    """Run until ``cycles`` cycles are done or ``stop`` is set (SIGTERM/SIGINT set it)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass

    done: list[CycleStats] = []
    in_flight: set[asyncio.Task] = set()

    sch = config.schedule
    late_limit = sch.misfire_grace_s + sch.jitter_s

    async def job() -> None:
        if stop.is_set():
            return
        if align:
            # APScheduler's own grace is whole real seconds, hours of scenario time when the clock
            # is accelerated; a poll that late would no longer be the poll of its grid slot.
            now = clock.now()
            slot = round(now.timestamp() / sch.interval_s) * sch.interval_s
            lateness = now.timestamp() - slot
            if lateness > late_limit:
                log.info("skipping a cycle %.0fs (scenario) behind its slot", lateness)
                return
        task = asyncio.current_task()
        if task is not None:
            in_flight.add(task)
        try:
            stats = await runner.run_cycle()
        finally:
            if task is not None:
                in_flight.discard(task)
        done.append(stats)
        if on_cycle:
            on_cycle(stats)
        if cycles is not None and len(done) >= cycles:
            stop.set()

    interval = clock.real_seconds(sch.interval_s)
    if align:
        first = clock.next_boundary(sch.interval_s)
        start = datetime.fromtimestamp(clock.real_at(first), UTC)
    else:
        start = datetime.now(UTC)
    trigger = IntervalTrigger(seconds=interval, start_date=start,
                              jitter=clock.real_seconds(sch.jitter_s) or None, timezone=UTC)
    scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
    scheduler.add_job(job, trigger, id="cycle", max_instances=1, coalesce=True,
                      misfire_grace_time=max(1, int(clock.real_seconds(sch.misfire_grace_s))))
    scheduler.start()
    if on_scheduled:
        on_scheduled(clock.at_real(start.timestamp()))
    log.info("scheduled every %.3fs real (%ss scenario), first at %s", interval,
             sch.interval_s, start.isoformat())
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        if in_flight:
            grace = config.timeouts.dns + config.timeouts.connect + config.timeouts.tls + 5
            log.info("waiting up to %.0fs for the cycle in flight", grace)
            _, pending = await asyncio.wait(in_flight, timeout=grace)
            for task in pending:
                task.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return done
