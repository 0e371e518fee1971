"""The runner's Elasticsearch workloads: ingest (sink vs raw ``_bulk``), the report over 1M
checks, and the optional soak, each as its own bench script in a child process.

A child process is the simplest honest boundary: the report has to be timed in a fresh process
anyway, a child can be killed at the budget whatever it is doing, and the scripts stay the
owners of their workloads (the runner only passes the shared node's URL and a size). Figures are
read from what each script prints (bench_report's JSON line, bench_indexing's ratio line); a
figure the runner cannot find becomes "not measured" with the script's last lines as the note,
never a guess.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peer_tools import ToolRun
from probe_common import log
from run_table import Row

BENCH = Path(__file__).resolve().parent


def child(script: str, args: list[str], deadline: float) -> ToolRun:
    """The script in a child; at the deadline SIGINT first, so that its ``finally`` blocks
    remove its temporary folders, and SIGKILL only if it is still there 15 s later."""
    log(f"{script} {' '.join(args)}")
    argv = [sys.executable, str(BENCH / script), *args]
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out.seek(0)
            return ToolRun(argv, -9, 0.0, time.perf_counter() - started,
                           out.read().decode(errors="replace"))
        out.seek(0)
        return ToolRun(argv, proc.returncode, 0.0, time.perf_counter() - started,
                       out.read().decode(errors="replace"))


def _tail(run: ToolRun) -> str:
    if run.returncode == -9:  # child() stopped it at its deadline
        return f"stopped at its deadline after {run.wall_s:.0f} s (raise --budget, or lower " \
               "the size)"
    text = " ".join(run.output.strip().splitlines()[-2:])
    return f"exit {run.returncode}: {text[-240:]}"


def ingest(url: str, docs: int, rounds: int, deadline: float, details: list[str]) -> list[Row]:
    """The whole path (``write`` and delivery on one loop) against raw ``_bulk``, the same
    against raw ``_bulk`` two requests at a time (the sink keeps up to two on the wire), and the
    sink draining a spool filled beforehand (a backlog): delivery alone."""
    label = f"ingest, docs/s ({docs:,} documents, {rounds} rounds)"
    run = child("bench_indexing.py", ["--url", url, "--docs", str(docs), "--rounds",
                                      str(rounds), "--warmup", str(min(docs, 5000))], deadline)
    rates = {}
    for side, pattern in (("raw", r"^\| raw[^|]*\| ([\d,.]+) \|"),
                          ("sink", r"^\| edgewatch sink[^|]*\| ([\d,.]+) \|"),
                          ("raw2", r"^\| two in flight[^|]*\| ([\d,.]+) \|"),
                          ("drain", r"^\| spool drain[^|]*\| ([\d,.]+) \|")):
        m = re.search(pattern, run.output, re.M)
        rates[side] = float(m.group(1).replace(",", "")) if m else None

    def shown(side: str, before: str = "", after: str = "") -> str:
        return f"{before}{rates[side]:,.0f}{after}" if rates[side] else "—"

    def ratio(line: str, pairs_label: str) -> float | None:
        m = re.search(re.escape(line) + r" = ([\d.]+)\*?\*? \(medians; per round, "
                      r"same-round pairs: ([^)]*)\)", run.output)
        if m is None:
            return None
        details.append(f"ingest: same-round pairs {pairs_label} {m.group(2)}")
        return float(m.group(1))

    whole = ratio("ratio sink / raw", "sink/raw")
    rows = [Row(label, shown("sink", after=" (sink)"), shown("raw", "raw `_bulk` "), whole,
                0.95, "higher", "≥ 0.95× raw `_bulk`", note="" if whole else _tail(run))]
    two = ratio("ratio sink / raw with two in flight", "sink/raw two in flight")
    if two is not None:
        rows.append(Row("ingest: the same whole path against raw `_bulk` two requests at a "
                        "time, docs/s", shown("sink", after=" (sink)"),
                        shown("raw2", "raw `_bulk` ×2 "), two, better="higher",
                        note="the sink keeps a second request on the wire: this is its "
                             "like-for-like peer"))
    drain = ratio("ratio drain / raw", "drain/raw")
    if drain is not None:
        rows.append(Row("ingest: the sink draining a spooled backlog, docs/s",
                        shown("drain", after=" (drain)"),
                        shown("raw", "raw `_bulk` "), drain, better="higher",
                        note="delivery alone: the documents spooled before the clock, "
                             "no producer on the sink's loop"))
    return rows


def report(url: str, docs: int, deadline: float, details: list[str],
           node_pid_file: Path | None = None) -> list[Row]:
    """Two rows: a fresh ``edgewatch report`` process on a node that has run it before, the
    request cache off (the node's own work, which is what a long-running cluster does for
    data it has not answered yet), and the first command on the node just started, whose
    JIT has not compiled the aggregation code yet (its share of the node's CPU in the note)."""
    label = f"report over {docs / 1e6:g}M checks, fresh process"
    extra = ["--node-pid-file", str(node_pid_file)] if node_pid_file is not None else []
    run = child("bench_report.py", ["--es-url", url, "--docs", str(docs), *extra], deadline)
    result = last_json(run.output)
    if not result or "report_cli_es_s" not in result:
        return [Row(label, "not measured", "—", note=_tail(run))]
    details.append("report: " + ", ".join(f"{k} {v}" for k, v in result.items()
                                          if k in ("documents", "runs", "load_s", "settle_s",
                                                   "report_cli_peak_rss_mib",
                                                   "report_cli_node_cpu_s",
                                                   "report_cli_warm_node_cpu_s",
                                                   "report_es_uncached_s")))
    goal = 10.0 * docs / 10_000_000 if docs >= 10_000_000 else None
    target = "10M in < 10 s" + ("" if goal else " (this row is smaller)")

    def row(work: str, seconds: float, note: str = "") -> Row:
        return Row(work, f"{seconds:.1f} s", "—", seconds if goal else None, goal,
                   target=target, shown=f"{seconds:.1f} s" if goal else "", note=note)

    rows = []
    warm = result.get("report_cli_es_warm_uncached_s") or []
    if warm:
        rows.append(row(f"{label}, node warm, request cache off", max(warm),
                        "slower of " + " / ".join(f"{w:.1f}" for w in warm) + " s"))
    cpu = result.get("report_cli_node_cpu_s")
    note = (f"node CPU {sum(cpu.values()):.1f} s, of which JIT compiler {cpu['jit']:.1f} s"
            if cpu else "")
    rows.append(row(f"{label}, first on a node just started", float(result["report_cli_es_s"]),
                    note))
    return rows


def soak(url: str, deadline: float) -> Row:
    """bench/bench_soak.py where it exists (its last JSON line: rss growth in percent)."""
    label = "soak: 14-day scenario, RSS growth day 1 → day 14"
    if not (BENCH / "bench_soak.py").exists():
        return Row(label, "not measured", "—", goal=5.0, target="< 5 %",
                   note="bench/bench_soak.py is not in this tree")
    run = child("bench_soak.py", ["--es-url", url], deadline)
    result = last_json(run.output) or {}
    growth = result.get("rss_growth_pct")
    if growth is None:
        return Row(label, "not measured", "—", goal=5.0, target="< 5 %", note=_tail(run))
    fds = result.get("fds_after_day1")
    note = (f"{result.get('written_checks')} checks written; RSS "
            f"{result.get('rss_day1_mib')} → {result.get('rss_last_day_mib')} MiB"
            + (f"; open fds after day 1: {fds[0]}–{fds[1]}" if fds else ""))
    return Row(label, f"{growth:+.1f} %", "—", float(growth), 5.0, target="< 5 %",
               shown=f"{growth:+.1f} %", note=note)


def last_json(output: str) -> dict | None:
    """The last line of a child's output that is a JSON object (the benchmarks print their
    figures as one such line after their progress); None if there is none. A line that only
    looks like one (``{`` of a pretty-printed object, a repr) is skipped, not fatal: the soak's
    indented output once took the whole Elasticsearch part of a run down with it."""
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None
