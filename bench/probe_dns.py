"""DNS workload: the previous probe path, the current one (asyncio and uvloop) and the peers,
alternating in one run.

On a shared 2-core machine the load moves by a factor of several within a minute, so one side
measured after the other compares two machines. Here every round runs each side once, the
order rotating from round to round, and the figure to quote is the ratio of the sides' CPU per
query, per round and as the median of the rounds.

* **baseline**: ``probe_dns`` as it was before the fast path (``--baseline``, a git revision):
  its DNS modules (those of ``_BASELINE_MODULES`` it has) are read from git into a private
  package (``bench_baseline_dns``) and run in this process, so the old and the new code meet
  the same resolver under the same load.
* **edgewatch**: today's ``probe_dns`` (prebuilt query, ``dns_read``) on asyncio's loop, and
  on uvloop's when uvloop is installed.
* **blackbox_exporter**: the same A query through ``/probe`` (its CPU from /proc).
* **dnseval** (dnsdiag, from PyPI, run from its own virtualenv ``--dnseval``): sequential
  queries; its CPU per query is the difference between a long and a short run, so the
  interpreter start-up is not counted.

Every query goes to the lab resolver of the workload, on loopback.
"""

from __future__ import annotations

import asyncio
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from peer_blackbox import Blackbox
from peer_tools import run_tool
from probe_common import ROOT, OpFigures, Work, drive_async, is_loopback, log

from pipeline.probe.dns import probe_dns

# Read from the revision, in this order (each may import the ones before it); a module the
# revision does not have is not part of its DNS path.
_BASELINE_MODULES = ("dns_wire", "dns_read", "dns_answer", "dns_exchange", "dns")


def load_baseline(rev: str) -> Callable[..., Awaitable]:
    """``probe_dns`` of git revision ``rev``, imported as a private package."""
    pkg = "bench_baseline_dns"
    if pkg not in sys.modules:
        sys.modules[pkg] = types.ModuleType(pkg)
        sys.modules[pkg].__path__ = []  # type: ignore[attr-defined]
        shown = {name: subprocess.run(["git", "-C", str(ROOT), "show",
                                       f"{rev}:pipeline/probe/{name}.py"],
                                      capture_output=True, text=True)
                 for name in _BASELINE_MODULES}
        present = [name for name, run in shown.items() if run.returncode == 0]
        if "dns" not in present:
            raise SystemExit(f"--baseline {rev}: {shown['dns'].stderr.strip()}")
        for name in present:
            src = shown[name].stdout
            for other in present:
                src = src.replace(f"pipeline.probe.{other} ", f"{pkg}.{other} ")
            module = types.ModuleType(f"{pkg}.{name}")
            module.__file__ = f"<{rev}:pipeline/probe/{name}.py>"
            sys.modules[module.__name__] = module
            exec(compile(src, module.__file__, "exec"), module.__dict__)
    return importlib.import_module(f"{pkg}.dns").probe_dns


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def ew_dns(work: Work, probe: Callable[..., Awaitable], label: str, n: int, concurrency: int,
           deadline: float, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
           warmup: int = 10) -> OpFigures:
    """``n`` A queries through ``probe`` (a ``probe_dns``), ``concurrency`` in flight."""
    async def one() -> tuple[bool, str | None]:
        r = await probe(work.resolver, work.qname, "A", work.dns_timeout)
        return r.ok, r.error_type

    async def main() -> OpFigures:
        for _ in range(warmup):
            await one()
        return await drive_async(OpFigures(label, "dns", n, concurrency=concurrency), one,
                                 deadline)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())


def dnseval(work: Work, venv: Path, count: int, deadline: float) -> tuple[float, float, str]:
    """(CPU s per query, queries, note) of dnsdiag's dnseval by the long-minus-short run."""
    exe = venv / "bin" / "dnseval"
    if not exe.exists():
        return float("nan"), 0, f"not installed ({exe})"
    assert is_loopback(work.resolver.address)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as servers:
        servers.write(f"{work.resolver.address}\n")
        servers.flush()
        runs = []
        for c in (5, 5 + count):
            argv = [str(exe), "-f", servers.name, "-p", str(work.resolver.port), "-c", str(c),
                    "-w", "2", "--skip-warmup", work.qname]
            run = run_tool(argv, deadline)
            if run.returncode != 0:
                return float("nan"), 0, f"exit {run.returncode}: {run.output.strip()[-200:]}"
            runs.append(run)
    return (runs[1].cpu_s - runs[0].cpu_s) / count, count, runs[1].output.strip()[-300:]


@dataclass
class DnsCompare:
    rounds: list[dict[str, OpFigures]] = field(default_factory=list)
    dnseval_cpu_per_query: float | None = None
    dnseval_note: str = ""
    load: list[str] = field(default_factory=list)
    baseline: str = ""

    def median_us(self, side: str) -> float | None:
        xs = [r[side].cpu_per_op_us for r in self.rounds if side in r and r[side].done]
        return statistics.median(x for x in xs if x is not None) if xs else None

    def ratios(self, side: str, peer: str) -> list[float]:
        return [r[side].cpu_s / r[side].done / (r[peer].cpu_s / r[peer].done)
                for r in self.rounds if side in r and peer in r and r[side].done
                and r[peer].done and r[peer].cpu_s]


def compare(work: Work, folder: Path, n: int, concurrency: int, rounds: int, deadline: float,
            baseline: str, dnseval_venv: Path | None, with_blackbox: bool = True
            ) -> DnsCompare:
    from probe_report import loadavg

    out = DnsCompare(baseline=baseline)
    sides: dict[str, Callable[[float], OpFigures]] = {
        "baseline": lambda d: ew_dns(work, load_baseline(baseline), "baseline", n,
                                     concurrency, d),
        "edgewatch": lambda d: ew_dns(work, probe_dns, "edgewatch", n, concurrency, d),
    }
    factory = uvloop_factory()
    if factory is not None:
        sides["edgewatch+uvloop"] = lambda d: ew_dns(work, probe_dns, "edgewatch+uvloop", n,
                                                     concurrency, d, factory)
    blackbox = Blackbox(work, folder) if with_blackbox else None
    try:
        if blackbox is not None:
            blackbox.start(min(deadline, time.monotonic() + 20))
            sides["blackbox_exporter"] = lambda d: blackbox.drive("dns", n, concurrency, d)
        names = list(sides)
        for i in range(rounds):
            if time.monotonic() > deadline:
                break
            out.load.append(loadavg())
            order = names[i % len(names):] + names[:i % len(names)]
            log(f"dns round {i + 1}/{rounds}: {', '.join(order)}")
            out.rounds.append({side: sides[side](deadline) for side in order})
    finally:
        if blackbox is not None:
            blackbox.stop()
    if dnseval_venv is not None and time.monotonic() < deadline:
        log("dnseval")
        cpu, _count, note = dnseval(work, dnseval_venv, max(n // 4, 50), deadline)
        out.dnseval_cpu_per_query = None if cpu != cpu else cpu
        out.dnseval_note = note
    return out


def report(c: DnsCompare, n: int, concurrency: int) -> str:
    def us(x: float | None) -> str:
        return "–" if x is None else f"{x:,.0f} µs"

    sides = list(c.rounds[0]) if c.rounds else []
    lines = [f"DNS A query, CPU per query, {n} queries {concurrency} in flight per side and "
             f"round, {len(c.rounds)} rounds alternating (order rotated); load average at "
             f"each round: {'; '.join(c.load)}", "",
             "| side | CPU per query, median | per round |", "|---|---|---|"]
    for side in sorted(sides):
        per = ", ".join(us(r[side].cpu_per_op_us) for r in c.rounds if side in r)
        label = f"{side} ({c.baseline})" if side == "baseline" else side
        fails = sum(r[side].done - r[side].ok for r in c.rounds if side in r)
        lines.append(f"| {label} | {us(c.median_us(side))} | {per}"
                     + (f" ({fails} not ok)" if fails else "") + " |")
    lines += ["", "| ratio (same round) | median | per round |", "|---|---|---|"]
    for a, b in [("edgewatch", "baseline"), ("edgewatch", "blackbox_exporter"),
                 ("edgewatch+uvloop", "blackbox_exporter"), ("edgewatch+uvloop", "edgewatch"),
                 ("baseline", "blackbox_exporter")]:
        rs = c.ratios(a, b)
        if rs:
            lines.append(f"| {a} / {b} | **{statistics.median(rs):.2f}** | "
                         + ", ".join(f"{x:.2f}" for x in rs) + " |")
    if c.dnseval_cpu_per_query is not None:
        ev = c.dnseval_cpu_per_query
        ew = c.median_us("edgewatch")
        lines += ["", f"dnseval (dnsdiag): {ev * 1e6:,.0f} µs CPU per query "
                  f"({1 / ev:,.0f} queries per CPU second, sequential, long-minus-short run)"
                  + (f"; edgewatch with {concurrency} in flight {1e6 / ew:,.0f} q per CPU s "
                     f"({ev * 1e6 / ew:.1f}×; not the target's measure, which is one query at "
                     "a time: bench/run.py's row)" if ew else "")]
    elif c.dnseval_note:
        lines += ["", f"dnseval: {c.dnseval_note}"]
    return "\n".join(lines)
