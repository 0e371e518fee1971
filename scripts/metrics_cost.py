"""What one scrape of `edgewatch run`'s metrics costs: bytes, time per scrape, daemon CPU.

    PYTHONPATH=. .venv/bin/python scripts/metrics_cost.py [--scenario study-14d] [--cycles 10]

Starts the lab (loopback only) and a real daemon with two deployed lists, waits for the cycles,
then scrapes /metrics 200 times over HTTP (wall time per scrape) and builds the same exposition
in-process from the stored documents (the CPU one scrape costs the daemon, without the cycles
that run beside an HTTP measurement). Prints one Markdown table; everything is stopped after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

from prometheus_client import generate_latest

from lab.stack import LabStack
from pipeline.config import load_config
from pipeline.cycle import CycleStats
from pipeline.documents import Record
from pipeline.metrics.daemon import Metrics
from pipeline.sinks.ndjson import read_store

LISTS = {"edge": "127.60.0.0/22\n127.61.0.0/24\n", "narrow": "127.60.0.0/24\n"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int, gzip: bool = False) -> tuple[bytes, float]:
    """One scrape; with ``gzip`` as Prometheus asks for it (Accept-Encoding: gzip)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Accept-Encoding": "gzip"} if gzip else {})
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as r:
        body = r.read()
    return body, time.perf_counter() - t0


def cycles_done(port: int) -> int:
    body, _ = scrape(port)
    for line in body.decode().splitlines():
        if line.startswith('edgewatch_cycles_total{delivered="true"}'):
            return int(float(line.split()[-1]))
    return 0


def in_process(config_path: Path, store: Path, runs: int = 200) -> tuple[int, float]:
    """The exposition rebuilt from the stored cycles: its size and CPU seconds per build."""
    m = Metrics(load_config(config_path, env={}))
    per: dict[str, list[dict]] = defaultdict(list)
    for doc in read_store(store, "checks"):
        per[doc["edgewatch.cycle.id"]].append(doc)
    for docs in per.values():
        asyncio.run(m.tap.write([Record("check", "-", d) for d in docs]))
        m.cycle_done(CycleStats(started=m.config.clock.start if m.config.clock else None,
                                real_seconds=0.5))
    t0 = time.process_time()
    for _ in range(runs):
        body = generate_latest(m.registry)
    return len(body), (time.process_time() - t0) / runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="study-14d")
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--scrapes", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgewatch-metrics-cost-") as tmp_s, \
            LabStack(args.scenario, speed=900, run_dir=Path(tmp_s) / "lab") as lab:
        tmp, port = Path(tmp_s), free_port()
        lists = ""
        for name, text in LISTS.items():
            (tmp / f"{name}.txt").write_text(text)
            lists += f'\n[[allowlists]]\nname = "{name}"\nfile = "{tmp / name}.txt"\n'
        config = tmp / "edgewatch.toml"
        config.write_text(lab.config_path.read_text() + f"""
[state]
dir = "{tmp / 'state'}"
[store]
dir = "{tmp / 'data'}"
[metrics]
listen = "127.0.0.1:{port}"
{lists}""")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEWATCH_", "ES_"))}
        daemon = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config",
                                   str(config), "--quiet"], env=env, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if cycles_done(port) >= args.cycles:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit("the daemon did not finish its cycles")
                time.sleep(0.2)
            times, sizes = [], []
            for _ in range(args.scrapes):
                body, dt = scrape(port)
                times.append(dt)
                sizes.append(len(body))
            series = sum(1 for line in body.decode().splitlines()
                         if line and not line.startswith("#"))
            gz_times = sorted(scrape(port, gzip=True)[1] for _ in range(args.scrapes))
            gz_size = len(scrape(port, gzip=True)[0])
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
        size, cpu = in_process(config, tmp / "data")
        times.sort()
        def ms(values: list[float]) -> str:
            return (f"{statistics.median(values) * 1000:.1f} / "
                    f"{values[int(len(values) * 0.95)] * 1000:.1f} ms")

        print(f"| scenario | resolvers × targets | lists | series | bytes per scrape (gzip) | "
              f"HTTP scrape median / p95 (gzip) | CPU per exposition (in-process) |\n"
              f"|---|---|---|---|---|---|---|\n| {args.scenario} | "
              f"{len(lab.scenario.resolvers)} × {len(lab.scenario.targets)} | {len(LISTS)} | "
              f"{series} | {statistics.median(sizes):.0f} ({gz_size}; in-process {size}) | "
              f"{ms(times)} ({ms(gz_times)}) | {cpu * 1000:.2f} ms |")


if __name__ == "__main__":
    main()
