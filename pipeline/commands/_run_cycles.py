"""What ``edgewatch run`` does (its options are in ``run``): cycles on a cadence until stopped
or N cycles are done. Kept apart from the parser so that building the CLI's parser does not load
the probe, the scheduler and the sinks for every other command.

Exit status: 0 when every cycle was delivered, 1 when a sink could not take a cycle, 2 for a
configuration problem or a directory another process holds, 3 when a stop request (SIGTERM,
SIGINT) had to abandon the cycle in flight.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import eventloop
from pipeline.commands._common import load_or_exit, make_clock
from pipeline.config import Config, ConfigError
from pipeline.cycle import CycleRunner, CycleStats
from pipeline.documents import iso
from pipeline.lock import LockError, locked
from pipeline.metrics.off import MetricsOff
from pipeline.runs import RunTracker
from pipeline.scheduler import (
    Outcome,
    Plan,
    Stop,
    early_signals,
    run_guarded,
    run_scheduled,
    shutdown_grace,
    signals,
)
from pipeline.sinks import build_sinks
from pipeline.sinks.summary import SummarySink

if TYPE_CHECKING:
    from pipeline.metrics.daemon import Metrics


ABANDONED_EXIT = 3


def lock_dirs(config: Config) -> list[tuple[str, Path]]:
    """Every directory this process must be the only writer of."""
    dirs: list[tuple[str, Path]] = [("state dir", config.state_dir)]
    if "ndjson" in config.sinks:
        dirs.append(("store dir", config.store_dir))
    if "elasticsearch" in config.sinks and config.elasticsearch is not None:
        dirs.append(("spool dir", config.elasticsearch.spool_dir))
    return dirs


async def run_async(config: Config, once: bool, cycles: int | None, align: bool,
                    quiet: bool, early: list[int] | None = None
                    ) -> tuple[Outcome, SummarySink]:
    clock = make_clock(config)
    summary = SummarySink()
    metrics = open_metrics(config)
    sinks = [*metrics.taps, *build_sinks(config), summary]
    tracker = RunTracker(config.state_dir / f"runs-{_safe(config.observer_name)}.sqlite3")
    runner = CycleRunner(config, clock, tracker, sinks)
    tty = sys.stderr.isatty()

    def progress(stats: CycleStats) -> None:
        metrics.cycle_done(stats)
        if quiet:
            return
        total = f"/{cycles}" if cycles else ""
        fails = sum(stats.failures.values())
        capped = f"  {stats.skipped} capped" if stats.skipped else ""
        capped += f"  {stats.afterlife} afterlife" if stats.afterlife else ""
        line = (f"cycle {runner.cycles}{total}  {iso(stats.started)}  {stats.queries} queries  "
                f"{stats.addresses} addresses{capped}  {fails} failures  "
                f"{stats.real_seconds * 1000:.0f} ms"
                + ("" if stats.delivered else "  NOT DELIVERED"))
        # A terminal gets one line rewritten in place; a log file or pipe one line per cycle.
        sys.stderr.write(f"\r{line}   " if tty else f"{line}\n")
        sys.stderr.flush()

    outcome = Outcome()
    stop = Stop()
    metrics.watch(sinks)
    metrics.start()  # before the sinks open: a taken port is one line, with nothing to undo
    # Signals are taken from the start: a SIGTERM while the sinks open (or the first cycle is
    # still waiting for its slot) is a clean stop, not the default kill.
    with signals(stop, early):
        try:
            await runner.open()
            if once:
                stats = await run_guarded(runner, stop, shutdown_grace(config))
                if stats is None:
                    outcome.abandoned = True
                else:
                    outcome.add(stats)
                    progress(stats)
            elif not stop.requested.is_set():
                def announce(first: datetime) -> None:
                    metrics.scheduled(first)
                    if not quiet:
                        sys.stderr.write(f"edgewatch: {len(config.targets)} target(s) × "
                                         f"{len(config.resolvers)} resolver(s) every "
                                         f"{config.schedule.interval_s:g}s; first cycle at "
                                         f"{iso(first)}; Ctrl-C stops after the cycle in "
                                         "flight\n")

                plan = Plan(cycles=cycles, align=align, on_cycle=progress,
                            on_scheduled=announce, on_skip=metrics.skipped)
                outcome = await run_scheduled(runner, config, clock, plan, stop=stop)
        finally:
            await runner.close()
            metrics.stop()
            if not quiet and tty:
                sys.stderr.write("\n")
    return outcome, summary


def open_metrics(config: Config) -> Metrics | MetricsOff:
    """The daemon's Prometheus metrics when ``[metrics] listen`` is set (pipeline/metrics/),
    else hooks that do nothing; prometheus_client is imported only in the first case."""
    if config.metrics_listen is None:
        return MetricsOff()
    from pipeline.metrics.daemon import Metrics

    return Metrics(config)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    if args.cycles is not None and args.cycles < 1:
        print("edgewatch run: --cycles must be at least 1", file=sys.stderr)
        return 2
    from pipeline.metrics.server import MetricsError
    from pipeline.sinks.spool import SpoolError

    try:
        with early_signals() as early, locked(lock_dirs(config)):
            outcome, summary = eventloop.run(
                run_async(config, args.once, args.cycles, not args.no_align, args.quiet, early),
                config.event_loop)
    except (LockError, SpoolError, ConfigError, MetricsError) as exc:  # one line each: what and why
        print(f"edgewatch run: {exc}", file=sys.stderr)
        return 2
    undelivered = outcome.undelivered
    if not args.quiet:
        print(summary.render())
        if undelivered:
            print(f"WARNING: {undelivered} cycle(s) could not be delivered to a sink",
                  file=sys.stderr)
    if outcome.abandoned:
        print("edgewatch run: the cycle in flight was abandoned on stop (not written, run "
              "state not committed)", file=sys.stderr)
        return ABANDONED_EXIT
    return 0 if not undelivered else 1
