"""kill -9 at random points inside cycles, restart, again: nothing duplicated, runs stay consistent.

``edgewatch run`` polls a rotating DNS peer on loopback once a second (15-minute cadence at
900x); the peer answers after a random 0-0.4 s so the kills land before, during and after the
answer, the connects and the write. After several kills a last process runs to completion.
Bounded in time: about 20 s of killing.

The counts (cycles started / stored whole / stored partially / duplicated ids / torn lines) are
printed for docs/RELIABILITY.md (``pytest -s``).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path

from faults_cycle_helpers import (
    EDGEWATCH,
    DnsPeer,
    closed_port,
    duplicated_ids,
    loopback_addresses,
    start_run,
    store_lines,
    write_config,
)

from pipeline.runs import RunTracker

KILLS = 8
TARGETS = ("a.faults.test", "b.faults.test")
RESOLVERS = 2
PER_CYCLE = len(TARGETS) * RESOLVERS * 3  # three addresses per answer


def test_kill_9_loop_loses_nothing_stored_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(9)
    with DnsPeer(loopback_addresses(6), jitter=0.4, rotate=2.5, window=3) as peer:
        config = write_config(tmp_path, peer.port, target_port=closed_port(), speed=900.0,
                              targets=TARGETS, resolvers=RESOLVERS, dns_timeout=1.0)
        deadline = time.monotonic() + 60
        replays = 0  # processes that found a journal (killed between state commit and write)
        for _ in range(KILLS):
            proc = start_run(config, "--no-align", "--quiet")
            try:
                # Into a cycle: wait for a fresh query burst, then a random point of the cycle.
                seen = peer.queries
                assert peer.wait_queries(seen + 1 + rng.randrange(0, 8), timeout=20), \
                    proc.communicate(timeout=5)
                time.sleep(rng.uniform(0.0, 0.6))
            finally:
                proc.send_signal(signal.SIGKILL)
                _, err = proc.communicate(timeout=30)
            replays += "re-sending" in err
            assert proc.returncode == -signal.SIGKILL
            assert time.monotonic() < deadline, "the kill loop overran its time bound"
        final = subprocess.run([EDGEWATCH, "run", "--config", str(config), "--cycles", "3",
                                "--no-align", "--quiet"], capture_output=True, text=True,
                               timeout=120)
        assert final.returncode == 0, final.stderr
        replays += "re-sending" in final.stderr
        started = peer.queries // (len(TARGETS) * RESOLVERS)

    store = tmp_path / "data"
    checks = store_lines(store, "checks")
    runs = store_lines(store, "runs")
    torn = sum(1 for d in checks + runs if "_torn" in d)
    checks = [d for d in checks if "_torn" not in d]
    runs = [d for d in runs if "_torn" not in d]
    per_cycle = Counter(d["edgewatch.cycle.id"] for d in checks)
    whole = sum(1 for n in per_cycle.values() if n == PER_CYCLE)
    partial = {c: n for c, n in per_cycle.items() if n != PER_CYCLE}
    dup_checks = duplicated_ids(checks)
    # Run summaries share their _id (the run id) by design, one line per version; a journal
    # replay after a kill may repeat a version, which must then be the very same document.
    versions: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for d in runs:
        versions[(d["_id"], d["edgewatch.run.version"])].append(d)
    dup_runs = sum(len(v) - 1 for v in versions.values())
    assert all(all(x == v[0] for x in v) for v in versions.values())
    print(f"\nkill -9 x{KILLS}: cycles started {started}, stored whole {whole}, "
          f"partial {len(partial)} ({sum(PER_CYCLE - n for n in partial.values())} documents "
          f"missing), check documents {len(checks)}, duplicated check ids {dup_checks}, "
          f"repeated run versions {dup_runs} (identical), torn lines {torn}, journal replays "
          f"{replays}")

    assert dup_checks == 0
    assert whole >= 3  # at least the final process's cycles
    # The run rules hold over the store: one open run per (resolver, name, address) at most,
    # every check's run has a summary, and no summary counts fewer checks than were stored.
    latest: dict[str, dict] = {}
    for d in runs:
        if d["_id"] not in latest or d["edgewatch.run.version"] > \
                latest[d["_id"]]["edgewatch.run.version"]:
            latest[d["_id"]] = d
    open_per_key: dict[tuple, list[str]] = defaultdict(list)
    for rid, d in latest.items():
        if d["edgewatch.run.open"]:
            key = (d["edgewatch.resolver.name"], d["dns.question.name"], d["destination.ip"])
            open_per_key[key].append(rid)
    assert all(len(v) == 1 for v in open_per_key.values()), {
        k: v for k, v in open_per_key.items() if len(v) > 1}
    stored_per_run = Counter(d["edgewatch.run.id"] for d in checks)
    assert set(stored_per_run) <= set(latest)
    assert all(latest[rid]["edgewatch.run.checks"] >= n for rid, n in stored_per_run.items())
    # The run state reloads, and its open runs are the store's open runs.
    tracker = RunTracker(tmp_path / "state" / "runs-faults-observer.sqlite3")
    assert {r.id for r in tracker.open_runs()} == {v[0] for v in open_per_key.values()}
    tracker.close()


async def test_a_torn_last_line_does_not_swallow_the_next_process_first_line(
        tmp_path: Path) -> None:
    """kill -9 inside a write leaves half a line; the next process's first line starts afresh."""
    from pipeline.documents import Record
    from pipeline.sinks.ndjson import NdjsonSink

    store = tmp_path / "data"
    store.mkdir()
    torn = store / "checks-2026-03-01.ndjson"
    torn.write_bytes(b'{"_id":"a","@timestamp":"2026-03-01T00:00:00Z"}\n{"_id":"b","@tim')
    sink = NdjsonSink(store)
    await sink.open()
    await sink.write([Record("check", "c", {"@timestamp": "2026-03-01T00:15:00Z"})])
    await sink.close()
    docs = store_lines(store, "checks")
    assert [d.get("_id") for d in docs] == ["a", None, "c"]  # the torn line stays one line
