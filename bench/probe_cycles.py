"""Workload 1 and 2: edgewatch cycles against the lab, and where their CPU goes (cProfile).

The cycle gets its probes as one object (``Probes``), so the figures of every query are read by
handing the cycle a DNS probe that records them, not by patching the cycle.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from dataclasses import dataclass, field
from pathlib import Path

from probe_common import ROOT

import pipeline.probe.rdns as rdns_module
from pipeline.clock import ScenarioClock
from pipeline.config import Config
from pipeline.cycle import CycleRunner, CycleStats
from pipeline.probe.dns import probe_dns
from pipeline.probe.probes import Probes
from pipeline.runs import RunTracker
from pipeline.sinks.ndjson import NdjsonSink


@dataclass
class CycleFigures:
    stats: list[CycleStats]
    warmup: CycleStats | None
    ptr_queries: int
    cut_short: bool
    dns_rtt_ms: list[float] = field(default_factory=list)
    dns_timeouts: dict[str, int] = field(default_factory=dict)


async def run_cycles(cfg: Config, n: int, deadline: float, out: Path) -> CycleFigures:
    clock = ScenarioClock(cfg.clock.start, cfg.clock.anchor, cfg.clock.speed)
    ptr = 0
    rtts: list[float] = []
    timeouts: dict[str, int] = {}
    orig_ptr = rdns_module.probe_rdns

    async def counted(*args, **kwargs):  # count the PTR queries the cycle really sends
        nonlocal ptr
        ptr += 1
        return await orig_ptr(*args, **kwargs)

    async def observed(resolver, *args, **kwargs):  # answer times and timeouts per resolver
        result = await probe_dns(resolver, *args, **kwargs)
        if result.error_type == "dns.timeout":
            timeouts[resolver.name] = timeouts.get(resolver.name, 0) + 1
        elif result.rtt_us is not None:
            rtts.append(result.rtt_us / 1000)
        return result

    runner = CycleRunner(cfg, clock, RunTracker(), [NdjsonSink(out)], probes=Probes(dns=observed))
    await runner.open()
    stats: list[CycleStats] = []
    warmup = None
    # The reverse lookups keep their cache; only the PTR queries it really sends are counted.
    rdns_module.probe_rdns = counted
    try:
        warmup = await runner.run_cycle()
        ptr = 0
        rtts.clear()
        timeouts.clear()
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            stats.append(await runner.run_cycle())
    finally:
        rdns_module.probe_rdns = orig_ptr
        await runner.close()
    return CycleFigures(stats, warmup, ptr, len(stats) < n, rtts, timeouts)


async def profile_cycles(cfg: Config, n: int, deadline: float, out: Path
                         ) -> tuple[cProfile.Profile, int]:
    clock = ScenarioClock(cfg.clock.start, cfg.clock.anchor, cfg.clock.speed)
    runner = CycleRunner(cfg, clock, RunTracker(), [NdjsonSink(out)])
    await runner.open()
    await runner.run_cycle()  # warm-up, not profiled
    prof = cProfile.Profile(time.process_time)
    done = 0
    try:
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            prof.enable()
            try:
                await runner.run_cycle()
            finally:
                prof.disable()
            done += 1
    finally:
        await runner.close()
    return prof, done


PLUMBING = ("/asyncio/", "/selectors.py", "/threading.py", "/bench/")


def top_functions(prof: cProfile.Profile, key: str, limit: int = 10) -> list[tuple]:
    """(ncalls, tottime, cumtime, where) sorted by key; event-loop plumbing left out."""
    st = pstats.Stats(prof)
    rows = []
    for (path, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        if any(p in path for p in PLUMBING) or "_contextvars.Context" in func \
                or "select.epoll" in func:
            continue
        short = path
        for marker in ("site-packages/", "/lib/python3", str(ROOT) + "/"):
            if marker in short:
                short = short.split(marker, 1)[1]
        where = f"{func} ({short}:{line})" if path != "~" else func
        rows.append((nc, tt, ct, where))
    rows.sort(key=lambda r: r[2] if key == "cumulative" else r[1], reverse=True)
    return rows[:limit]
