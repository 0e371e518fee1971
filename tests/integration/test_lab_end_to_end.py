"""The main job against the lab: what edgewatch stores equals the lab's ground truth.

Everything here is real: the authoritative server follows the scenario on an accelerated clock,
unbound / knot-resolver / PowerDNS recursor resolve through it, the edges are TLS servers with a
lab CA, and ``edgewatch run`` is the installed console script in a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest
from e2e_truth import compare_with_truth, latest_runs, timestamp

from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.clock import ScenarioClock
from pipeline.config import Resolver, Target, Timeouts, load_config
from pipeline.cycle import CycleRunner
from pipeline.runs import RunTracker
from pipeline.sinks.ndjson import read_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from ecs_rules import document_problems

pytestmark = pytest.mark.integration
SPEED = 900.0  # one 15-minute poll every second
EDGEWATCH = [sys.executable, "-m", "pipeline"]


lab = lab_fixture("quick", speed=SPEED, scope="module")


def run_edgewatch(config: Path, store: Path, state: Path, *args: str) -> str:
    env = {**os.environ, "EDGEWATCH_STORE__DIR": f'"{store}"',
           "EDGEWATCH_STATE__DIR": f'"{state}"'}
    env.pop("ES_URL", None)
    proc = subprocess.run([*EDGEWATCH, "run", "--config", str(config), *args],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_stored_documents_equal_the_ground_truth(lab: LabStack, tmp_path: Path) -> None:
    store, state = tmp_path / "data", tmp_path / "state"
    out = run_edgewatch(lab.config_path, store, state, "--cycles", "30")
    assert "distinct addresses over all resolvers" in out
    figures = compare_with_truth(lab, read_store(store, "checks"), read_store(store, "runs"))
    # The window must have exercised what the comparison is about.
    assert figures["polls"] >= 30 * 5 * 2 * 0.6  # overruns may coalesce a few polls
    assert figures["failures"] > 0 and figures["reused"] > 0
    # what real resolvers and edges produced is true to ECS 9.2.0 (tests/pipeline/test_ecs.py)
    every = list(read_store(store, "checks")) + list(read_store(store, "runs"))
    assert [p for d in every for p in document_problems(d)] == []
    assert any(len(d.get("dns.answers", [])) > 1 for d in every)  # answer sections recorded
    for doc in read_store(store, "checks"):
        if "destination.ip" in doc:
            assert doc.get("error.type") == lab.truth.edge_outcome(doc["destination.ip"]), doc
            net = doc["destination.ip"].rsplit(".", 1)[0]
            assert doc["edgewatch.destination.prefix24"].startswith(net)
            assert doc["destination.as.number"] in {64600, 64700}
            assert doc["destination.domain"].endswith(".edge.lab.test")


def test_runs_continue_across_a_restart(lab: LabStack, tmp_path: Path) -> None:
    store, state = tmp_path / "data", tmp_path / "state"
    run_edgewatch(lab.config_path, store, state, "--cycles", "4", "--quiet")
    first = latest_runs(read_store(store, "runs"))
    run_edgewatch(lab.config_path, store, state, "--cycles", "4", "--quiet")
    # Exact equality with the truth over both processes' polls proves the open runs continued.
    compare_with_truth(lab, read_store(store, "checks"), read_store(store, "runs"))
    after = latest_runs(read_store(store, "runs"))
    continued = [rid for rid, d in first.items() if d["edgewatch.run.open"]
                 and after[rid]["edgewatch.run.checks"] > d["edgewatch.run.checks"]]
    assert continued, "no run was open across the restart"


def test_a_dead_resolver_costs_only_its_own_timeout(lab: LabStack, tmp_path: Path) -> None:
    """14 resolvers × 3 targets, three resolvers silent: the others answer without waiting."""
    cfg = load_config(lab.config_path, env={})
    silent = []
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        silent.append(s)
    live = list(cfg.resolvers)
    resolvers = [Resolver(f"live-{i}", live[i % len(live)].address, live[i % len(live)].port)
                 for i in range(11)]
    resolvers += [Resolver(f"dead-{i}", "127.0.0.1", s.getsockname()[1])
                  for i, s in enumerate(silent)]
    targets = (*cfg.targets, Target("missing.api.lab.test"))
    timeout = 1.0
    cfg = replace(cfg, resolvers=tuple(resolvers), targets=targets, sinks=(),
                  timeouts=Timeouts(dns=timeout, connect=0.3, tls=0.5, http=0.5))
    clock = ScenarioClock(cfg.clock.start, cfg.clock.anchor, cfg.clock.speed)
    runner = CycleRunner(cfg, clock, RunTracker(), [])

    async def one() -> tuple[float, object]:
        t0 = time.perf_counter()
        stats = await runner.run_cycle()
        return time.perf_counter() - t0, stats

    try:
        elapsed, stats = asyncio.run(one())
    finally:
        for s in silent:
            s.close()
    assert stats.queries == 14 * 3
    assert stats.failures["dns.timeout"] >= 3 * 3
    # Sequential waiting would take at least 9 timeouts; concurrent waiting about one.
    assert elapsed < 3 * timeout


def test_an_unreachable_cluster_does_not_slow_probing(lab: LabStack, tmp_path: Path) -> None:
    """The cluster accepts connections and never answers (the worst kind of outage): records
    wait in the spool, and the cycles still run on every slot of the cadence."""
    import threading

    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        hang.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(hang.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    config = tmp_path / "edgewatch.toml"
    config.write_text(lab.config_path.read_text() + f"""
[elasticsearch]
url = "http://127.0.0.1:{hang.getsockname()[1]}"
request_timeout = "2s"
spool_dir = "{tmp_path / 'spool'}"
dead_letter_dir = "{tmp_path / 'dead'}"

[sinks]
enabled = ["elasticsearch", "ndjson"]
""")
    try:
        run_edgewatch(config, tmp_path / "data", tmp_path / "state", "--cycles", "6", "--quiet")
    finally:
        stop.set()
        thread.join()
        for s in held:
            s.close()
        hang.close()
    slots = sorted({round(timestamp(d["@timestamp"]) / 900)
                    for d in read_store(tmp_path / "data", "checks")})
    assert len(slots) == 6
    gaps = [b - a for a, b in pairwise(slots)]
    assert sum(1 for g in gaps if g == 1) >= 4, gaps  # a blocking flush would skip every other
    assert any(p.stat().st_size for p in (tmp_path / "spool").rglob("*") if p.is_file())

