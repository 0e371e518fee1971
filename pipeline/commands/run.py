"""``edgewatch run``: the main job — cycles on a cadence until stopped or N cycles are done."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

from pipeline.clock import ScenarioClock, real_clock
from pipeline.commands._common import add_config_argument, load_or_exit
from pipeline.config import Config
from pipeline.cycle import CycleRunner, CycleStats
from pipeline.documents import iso
from pipeline.runs import RunTracker
from pipeline.scheduler import run_scheduled
from pipeline.sinks import build_sinks
from pipeline.sinks.summary import SummarySink


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="probe every target through every resolver on a cadence",
        description="Run the probe: every cycle asks each resolver for each target, checks "
        "every answered address with TCP and TLS, tracks IP runs and writes documents to the "
        "configured sinks (Elasticsearch, or the local ndjson store when no cluster is "
        "configured). Stops cleanly on SIGTERM/SIGINT, finishing the cycle in flight.",
    )
    add_config_argument(p)
    p.add_argument("--once", action="store_true", help="run one cycle now and exit")
    p.add_argument("--cycles", type=int, metavar="N",
                   help="stop after N scheduled cycles (default: run until stopped)")
    p.add_argument("--no-align", action="store_true",
                   help="start the first cycle now instead of on the cadence grid")
    p.add_argument("--quiet", action="store_true", help="no progress line, no summary")
    p.set_defaults(func=run)


def make_clock(config: Config) -> ScenarioClock:
    if config.clock is None:
        return real_clock()
    return ScenarioClock(config.clock.start, config.clock.anchor, config.clock.speed)


async def run_async(config: Config, once: bool, cycles: int | None, align: bool,
                    quiet: bool) -> tuple[list[CycleStats], SummarySink]:
    clock = make_clock(config)
    summary = SummarySink()
    sinks = [*build_sinks(config), summary]
    tracker = RunTracker(config.state_dir / f"runs-{_safe(config.observer_name)}.sqlite3")
    runner = CycleRunner(config, clock, tracker, sinks)
    await runner.open()

    def progress(stats: CycleStats) -> None:
        if quiet:
            return
        total = f"/{cycles}" if cycles else ""
        fails = sum(stats.failures.values())
        sys.stderr.write(
            f"\rcycle {runner.cycles}{total}  {iso(stats.started)}  {stats.queries} queries  "
            f"{stats.addresses} addresses  {fails} failures  {stats.real_seconds * 1000:.0f} ms"
            + ("" if stats.delivered else "  NOT DELIVERED") + "   "
        )
        sys.stderr.flush()

    try:
        if once:
            stats = [await runner.run_cycle()]
            progress(stats[0])
        else:
            def announce(first: datetime) -> None:
                if not quiet:
                    sys.stderr.write(f"edgewatch: {len(config.targets)} target(s) × "
                                     f"{len(config.resolvers)} resolver(s) every "
                                     f"{config.schedule.interval_s:g}s; first cycle at "
                                     f"{iso(first)}; Ctrl-C stops after the cycle in flight\n")

            stats = await run_scheduled(runner, config, clock, cycles=cycles,
                                        on_cycle=progress, align=align, on_scheduled=announce)
    finally:
        await runner.close()
        if not quiet:
            sys.stderr.write("\n")
    return stats, summary


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    if args.cycles is not None and args.cycles < 1:
        print("edgewatch run: --cycles must be at least 1", file=sys.stderr)
        return 2
    stats, summary = asyncio.run(
        run_async(config, args.once, args.cycles, not args.no_align, args.quiet)
    )
    if not args.quiet:
        print(summary.render())
        undelivered = sum(1 for s in stats if not s.delivered)
        if undelivered:
            print(f"WARNING: {undelivered} cycle(s) could not be delivered to a sink",
                  file=sys.stderr)
    return 0 if all(s.delivered for s in stats) else 1
