"""The cycle's three steps without a network: canned probes, an in-memory sink, milliseconds.

The probes object is what makes this possible: the cycle asks ``Probes`` and never wires a probe
function itself, so canned answers stand in for resolvers and edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.config import Config, Resolver, Target, Timeouts
from pipeline.cycle import CycleRunner
from pipeline.documents import Record
from pipeline.probe.connect import ConnectResult, ConnectSpec
from pipeline.probe.dns import AnswerAddress, DnsResult
from pipeline.probe.probes import Probes
from pipeline.runs import RunTracker

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=15)
CONFIG = Config(observer_name="obs", observer_geo={},
                targets=(Target("api.cycle.test", http_path="/health"),),
                resolvers=(Resolver("r1", "127.0.0.1"),), rdns_enabled=False,
                timeouts=Timeouts(dns=0.7, connect=0.8, tls=0.9, http=1.1))


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t


class MemorySink:
    """Keeps what it was given; ``fail`` makes the next writes raise, as a full disk would."""

    name = "memory"

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.fail = False

    async def open(self) -> None: ...

    async def write(self, records: Sequence[Record]) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        self.records.extend(records)

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


def canned(answer: list[str], seen: list[tuple]) -> Probes:
    """Probes answering ``answer`` (changed in place between cycles) and connecting fine."""

    async def dns(resolver, qname, rtype, timeout, keep_raw=False, ssl_context=None):
        seen.append(("dns", timeout, keep_raw, ssl_context))
        return DnsResult(resolver, qname, rtype, rcode="NOERROR",
                         addresses=tuple(AnswerAddress(a, 60) for a in answer))

    async def connect(address: str, port: int, server_name: str, spec: ConnectSpec):
        seen.append(("connect", spec))
        return ConnectResult(address, port, server_name, tcp_established=True,
                             tls_established=True, tls_verified=True)

    return Probes(dns=dns, connect=connect)


def _runs(tracker: RunTracker) -> set[tuple[str, str, int]]:
    return {(r.key.address, r.id, r.checks) for r in tracker.open_runs()}


async def test_a_failed_sink_write_undoes_the_cycle_and_the_next_starts_from_the_commit(
        tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite3"
    answer, seen = ["127.0.0.10"], []
    sink, clock = MemorySink(), Clock()
    runner = CycleRunner(CONFIG, clock, RunTracker(db), [sink], probes=canned(answer, seen))
    await runner.open()
    first = await runner.run_cycle()
    assert first.delivered and first.documents == 2  # a check and its run summary
    committed = _runs(runner.tracker)
    (run_a,) = committed
    assert run_a[0] == "127.0.0.10" and run_a[2] == 1

    clock.t, answer[:], sink.fail = T0 + STEP, ["127.0.0.11"], True
    failed = await runner.run_cycle()
    assert not failed.delivered and failed.documents == 3  # a check, a new run, a closed run
    assert _runs(runner.tracker) == committed  # the cycle's transition is undone
    assert RunTracker(db).open_runs() and _runs(RunTracker(db)) == committed  # on disk too
    assert RunTracker(db).journal() is None
    assert len(sink.records) == 2  # nothing of the failed cycle was stored

    clock.t, answer[:], sink.fail = T0 + 2 * STEP, ["127.0.0.10"], False
    third = await runner.run_cycle()
    assert third.delivered
    assert _runs(runner.tracker) == {("127.0.0.10", run_a[1], 2)}  # the run goes on
    check = next(r for r in sink.records[2:] if r.kind == "check")
    assert check.doc["edgewatch.run.id"] == run_a[1]
    stored = {r.doc.get("edgewatch.run.id") for r in sink.records}
    assert stored == {run_a[1]}, "no run of the undone cycle reached the store"
    await runner.close()


async def test_the_probes_are_bound_once_to_the_configuration() -> None:
    answer, seen = ["127.0.0.10"], []
    runner = CycleRunner(CONFIG, Clock(), RunTracker(), [MemorySink()],
                         probes=canned(answer, seen))
    await runner.run_cycle()
    (dns,) = [s for s in seen if s[0] == "dns"]
    (connect,) = [s for s in seen if s[0] == "connect"]
    _, timeout, keep_raw, ssl_context = dns
    spec = connect[1]
    assert (timeout, keep_raw) == (0.7, False)
    assert ssl_context is spec.contexts[0], "DoT/DoH verify with the edges' verifying context"
    assert (spec.connect_timeout, spec.tls_timeout, spec.http_timeout) == (0.8, 0.9, 1.1)
    assert spec.http_path == "/health"  # the target's, per call


async def test_a_clock_behind_the_last_cycle_skips_without_touching_state() -> None:
    answer, seen = ["127.0.0.10"], []
    clock, sink = Clock(), MemorySink()
    runner = CycleRunner(CONFIG, clock, RunTracker(), [sink], probes=canned(answer, seen))
    await runner.run_cycle()
    before = _runs(runner.tracker)
    clock.t = T0 - STEP
    skipped = await runner.run_cycle()
    assert skipped.clock_behind_s == STEP.total_seconds()
    assert skipped.documents == 0 and _runs(runner.tracker) == before and len(sink.records) == 2
