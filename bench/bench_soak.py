"""A 14-day soak on the accelerated clock: does ``edgewatch run`` hold its memory and files?

    .venv/bin/python bench/bench_soak.py --es-url URL [--cycles 1344] [--speed 1800]
        [--tracemalloc] [--budget 1500] [--json out.json]

Starts the ``study-14d`` lab (loopback only, torn down whatever happens) at ``--speed``, sets up
a fresh namespace on the given cluster (or on a devstack node started for the run, heap 512m),
and runs ``edgewatch run --cycles N`` into it as a child process, exactly as deployed. After
every cycle (the child's progress line) the child's resident set (VmRSS) and open file
descriptors (/proc/<pid>/fd) are sampled. Figures: RSS at the end of day 1 and of day 14 (the
median of each day's last 8 samples), the growth between them, fds min/max after day 1, and
documents produced (the child's per-cycle address counts are not documents, so the cluster's
count is compared with the child's closing line). With ``--tracemalloc`` the child traces
allocations and writes a snapshot at the end of day 1 and at the end; the top differences by
line are printed (the tool to find what grows; it slows the child, so figures of such a run
are not the ones to quote).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack.node import start_node  # noqa: E402
from lab.stack import LabStack  # noqa: E402
from pipeline.config import load_config  # noqa: E402

# The child: edgewatch's own main, optionally with tracemalloc and a SIGUSR1 snapshot dump.
CHILD = """
import os, signal, sys
if os.environ.get("SOAK_TRACE"):
    import tracemalloc
    tracemalloc.start(8)
    n = [0]
    def dump(_sig, _frame):
        n[0] += 1
        tracemalloc.take_snapshot().dump(f"{os.environ['SOAK_TRACE']}.{n[0]}")
    signal.signal(signal.SIGUSR1, dump)
from pipeline.cli import main
sys.exit(main(sys.argv[1:]))
"""
CYCLE_LINE = re.compile(r"^cycle (\d+)/(\d+)\s")


def rss_kib(pid: int) -> int:
    m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) if m else 0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def config_text(lab: LabStack, work: Path, url: str, namespace: str) -> str:
    return lab.config_path.read_text() + f"""
[state]
dir = "{work / 'state'}"

[elasticsearch]
url = "{url}"
namespace = "{namespace}"
spool_dir = "{work / 'spool'}"
dead_letter_dir = "{work / 'dead-letter'}"
flush_interval = "200ms"

[sinks]
enabled = ["elasticsearch"]
"""


def run_child(config: Path, cycles: int, trace: Path | None, per_day: int,
              budget: float) -> tuple[list[tuple[int, int, int]], list[str], int, str]:
    """Run ``edgewatch run`` and sample it after every cycle: [(cycle, rss KiB, fds)]."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    if trace is not None:
        env["SOAK_TRACE"] = str(trace)
    cmd = [sys.executable, "-c", CHILD, "run", "--config", str(config), "--cycles",
           str(cycles)]
    out = config.parent / "run-stdout.txt"  # the closing summary (documents written)
    stdout = open(out, "w")  # noqa: SIM115 - closed below, after the child
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    samples: list[tuple[int, int, int]] = []
    tail: list[str] = []
    deadline = time.monotonic() + budget
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail = [*tail, line.rstrip()][-12:]
            m = CYCLE_LINE.match(line)
            if m:
                n = int(m.group(1))
                samples.append((n, rss_kib(proc.pid), fd_count(proc.pid)))
                if trace is not None and n in (per_day, cycles - 1):
                    proc.send_signal(signal.SIGUSR1)
                if n % per_day == 0:
                    print(f"  day {n // per_day}: cycle {n}, RSS {samples[-1][1] / 1024:.1f} "
                          f"MiB, {samples[-1][2]} fds", file=sys.stderr, flush=True)
            if time.monotonic() > deadline:
                print("  budget exhausted: stopping the run", file=sys.stderr)
                proc.send_signal(signal.SIGTERM)
                break
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stdout.close()
    return samples, tail, rc, out.read_text()


def day_end(samples: list[tuple[int, int, int]], day: int, per_day: int) -> float | None:
    """Median RSS (KiB) of the last 8 samples of ``day``."""
    last = [rss for n, rss, _ in samples if (day - 1) * per_day < n <= day * per_day][-8:]
    return statistics.median(last) if last else None


def trace_diff(trace: Path, top: int = 15) -> list[str]:
    import tracemalloc

    first, last = Path(f"{trace}.1"), Path(f"{trace}.2")
    if not (first.exists() and last.exists()):
        return ["(no snapshots)"]
    a = tracemalloc.Snapshot.load(str(first))
    b = tracemalloc.Snapshot.load(str(last))
    return [str(s) for s in b.compare_to(a, "lineno")[:top]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--es-url", help="a running cluster (default: a devstack node, heap 512m)")
    ap.add_argument("--cycles", type=int, default=1344)
    ap.add_argument("--speed", type=float, default=1800.0)
    ap.add_argument("--scenario", default="study-14d")
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--budget", type=float, default=1500.0, help="seconds, then stop")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgewatch-soak-"))
    node = None
    try:
        if args.es_url is None:
            # A folder of its own: the node runs as another user, which cannot enter ``work``
            # (mkdtemp makes it 0700); a fresh mkdtemp under /tmp is one it is handed.
            node = start_node(run_dir=Path(tempfile.mkdtemp(prefix="edgewatch-soak-es-")),
                              heap="512m", die_with_parent=True)
        url = args.es_url or node.url  # type: ignore[union-attr]
        from elasticsearch import Elasticsearch

        es = Elasticsearch(url, request_timeout=120)
        namespace = f"soak{int(time.time()) % 1_000_000}"
        with LabStack(args.scenario, speed=args.speed, run_dir=work / "lab") as lab:
            config = work / "edgewatch.toml"
            config.write_text(config_text(lab, work, url, namespace))
            cfg = load_config(config)
            per_day = round(86400 / cfg.schedule.interval_s)
            from pipeline.commands.setup import setup

            assert cfg.elasticsearch is not None
            setup(cfg.elasticsearch, out=io.StringIO())
            trace = work / "trace" if args.tracemalloc else None
            t0 = time.monotonic()
            samples, tail, rc, summary = run_child(config, args.cycles, trace, per_day,
                                                   args.budget)
            elapsed = time.monotonic() - t0
        stream = f"logs-edgewatch.check-{namespace}"
        es.indices.refresh(index=stream)
        indexed = es.count(index=stream)["count"]
        runs = es.count(index=f"edgewatch-runs-{namespace}")["count"]
        days = len(samples) // per_day
        d1, dn = day_end(samples, 1, per_day), day_end(samples, max(days, 1), per_day)
        after = [fds for n, _, fds in samples if n > per_day]
        result = {
            "cycles": len(samples), "per_day": per_day, "days": days, "exit": rc,
            "real_s": round(elapsed, 1), "indexed_checks": indexed, "run_summaries": runs,
            "written_checks": int(m.group(1)) if (m := re.search(
                r"(\d+) check documents", summary)) else None,
            "rss_day1_mib": round(d1 / 1024, 1) if d1 else None,
            "rss_last_day_mib": round(dn / 1024, 1) if dn else None,
            "rss_growth_pct": round(100 * (dn - d1) / d1, 2) if d1 and dn else None,
            "fds_after_day1": [min(after), max(after)] if after else None,
            "rss_by_day_mib": [round((day_end(samples, d, per_day) or 0) / 1024, 1)
                               for d in range(1, days + 1)],
            "child_tail": tail[-4:],
        }
        if trace is not None:
            result["tracemalloc_top"] = trace_diff(trace)
        print(json.dumps(result))  # one line: the runner reads the last JSON line
        if args.json:
            args.json.write_text(json.dumps({**result, "samples": samples}))
        return 0 if rc == 0 else 1
    finally:
        if node is not None:
            node.stop()
            shutil.rmtree(node.run_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
