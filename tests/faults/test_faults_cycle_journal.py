"""The run state and the store never disagree: a crash between committing a cycle's state and
writing its documents, and a sink that refuses a cycle.

The crash is a cycle cancelled inside its sink write (what ``kill -9`` leaves behind, without
killing the test process); the next runner on the same state replays the journalled run
summaries before it measures, so the store never holds a run the state does not know.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from faults_cycle_helpers import closed_port, write_config

from pipeline.config import load_config
from pipeline.cycle import CycleRunner, Probes
from pipeline.documents import Record
from pipeline.probe.connect import ConnectResult
from pipeline.probe.dns import AnswerAddress, DnsResult
from pipeline.runs import RunTracker
from pipeline.sinks.ndjson import NdjsonSink, read_store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t


class HangingSink:
    """Takes the records and never returns: the process dies here."""

    name = "hanging"

    def __init__(self) -> None:
        self.reached = asyncio.Event()

    async def open(self) -> None: ...

    async def write(self, records: Sequence[Record]) -> None:
        self.reached.set()
        await asyncio.sleep(3600)

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class RefusingSink(HangingSink):
    async def write(self, records: Sequence[Record]) -> None:
        raise OSError(28, "No space left on device")


def _probes(answers: dict[str, tuple[str, ...]]) -> Probes:
    async def dns(resolver, qname, rtype, timeout, **kw):
        return DnsResult(resolver, qname, rtype, rcode="NOERROR",
                         addresses=tuple(AnswerAddress(a, 60) for a in answers["now"]))

    async def connect(address, port, server_name, *args):
        return ConnectResult(address, port, server_name, tcp_established=True,
                             tls_established=True)

    return Probes(dns=dns, connect=connect)


def _latest(runs: list[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for d in runs:
        if d["_id"] not in latest or d["edgewatch.run.version"] > \
                latest[d["_id"]]["edgewatch.run.version"]:
            latest[d["_id"]] = d
    return latest


async def test_a_crash_inside_the_write_is_replayed_by_the_next_process(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, 53, target_port=closed_port()), env={})
    db, store = tmp_path / "state" / "runs.sqlite3", tmp_path / "data"
    answers = {"now": ("127.0.0.40", "127.0.0.41")}
    clock = Clock()
    first = CycleRunner(cfg, clock, RunTracker(db), [NdjsonSink(store)], probes=_probes(answers))
    await first.open()
    await first.run_cycle()  # two runs open, stored
    await first.close()

    clock.t = T0 + timedelta(minutes=15)
    answers["now"] = ("127.0.0.41", "127.0.0.42")  # .40 ends, .42 starts
    hanging = HangingSink()
    dying = CycleRunner(cfg, clock, RunTracker(db), [hanging], probes=_probes(answers))
    await dying.open()
    cycle = asyncio.create_task(dying.run_cycle())
    await hanging.reached.wait()
    cycle.cancel()
    await asyncio.gather(cycle, return_exceptions=True)
    dying.tracker.close()  # the process is gone; nothing else of it runs
    assert RunTracker(db).journal() is not None

    clock.t = T0 + timedelta(minutes=30)
    after = CycleRunner(cfg, clock, RunTracker(db), [NdjsonSink(store)], probes=_probes(answers))
    await after.open()  # replays the journal
    assert after.tracker.journal() is None
    await after.run_cycle()
    open_runs = {r.id for r in after.tracker.open_runs()}
    await after.close()

    latest = _latest(list(read_store(store, "runs")))
    by_address: dict[str, list[dict]] = {}
    for d in latest.values():
        by_address.setdefault(d["destination.ip"], []).append(d)
    assert {a: len(v) for a, v in by_address.items()} == {
        "127.0.0.40": 1, "127.0.0.41": 1, "127.0.0.42": 1}
    assert by_address["127.0.0.40"][0]["edgewatch.run.open"] is False  # its end was replayed
    assert {rid for rid, d in latest.items() if d["edgewatch.run.open"]} == open_runs
    assert by_address["127.0.0.42"][0]["edgewatch.run.checks"] == 2  # started in the lost cycle


async def test_a_refused_write_undoes_the_cycle_state(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, 53, target_port=closed_port()), env={})
    db, store = tmp_path / "state" / "runs.sqlite3", tmp_path / "data"
    answers = {"now": ("127.0.0.50",)}
    clock = Clock()
    runner = CycleRunner(cfg, clock, RunTracker(db), [NdjsonSink(store)], probes=_probes(answers))
    await runner.open()
    await runner.run_cycle()
    await runner.close()
    before = {(r.id, r.checks) for r in RunTracker(db).open_runs()}

    clock.t = T0 + timedelta(minutes=15)
    answers["now"] = ("127.0.0.51",)
    refused = CycleRunner(cfg, clock, RunTracker(db), [RefusingSink()], probes=_probes(answers))
    await refused.open()
    stats = await refused.run_cycle()
    assert not stats.delivered
    assert {(r.id, r.checks) for r in refused.tracker.open_runs()} == before
    await refused.close()
    tracker = RunTracker(db)
    assert {(r.id, r.checks) for r in tracker.open_runs()} == before
    assert tracker.journal() is None
