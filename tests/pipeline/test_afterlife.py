"""Afterlife checks in the cycle, without a network: canned probes, an in-memory sink.

A retired address is checked on after its run ended, as a document of its own kind, until its
afterlife is over, a new run of it opens, or the cap leaves it out; the set survives a restart
because it is derived from the committed run state.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from ecs_rules import document_problems, flatten, mapping_problems
from test_cycle import CONFIG, STEP, Clock, MemorySink

from pipeline.config import Afterlife
from pipeline.cycle import CycleRunner, cycle_budget
from pipeline.es import names, templates
from pipeline.probe.connect import ConnectResult, ConnectSpec
from pipeline.probe.dns import AnswerAddress, DnsResult
from pipeline.probe.probes import Probes
from pipeline.runs import RunTracker

ON = replace(CONFIG, afterlife=Afterlife(duration_s=3 * STEP.total_seconds()))


def lab_probes(answer: list[str], refusing: set[str], connects: list[str]) -> Probes:
    """DNS answers ``answer`` (changed in place); addresses in ``refusing`` refuse TCP."""

    async def dns(resolver, qname, rtype, timeout, keep_raw=False, ssl_context=None):
        return DnsResult(resolver, qname, rtype, rcode="NOERROR",
                         addresses=tuple(AnswerAddress(a, 60) for a in answer))

    async def connect(address: str, port: int, server_name: str, spec: ConnectSpec):
        connects.append(address)
        if address in refusing:
            return ConnectResult(address, port, server_name, error_type="tcp.refused",
                                 error_message="refused")
        return ConnectResult(address, port, server_name, tcp_established=True,
                             tls_established=True, tls_verified=True)

    return Probes(dns=dns, connect=connect)


async def _cycles(runner: CycleRunner, clock: Clock, n: int) -> None:
    for _ in range(n):
        await runner.run_cycle()
        clock.t += STEP


def _afterlife(sink: MemorySink) -> list[tuple[str, int, str | None]]:
    return [(r.doc["destination.ip"], r.doc["edgewatch.afterlife.age.s"],
             r.doc.get("error.type")) for r in sink.records if r.kind == "afterlife"]


async def test_a_retired_address_is_checked_for_its_afterlife_then_dropped(
        tmp_path: Path) -> None:
    answer, connects = ["192.0.2.1", "192.0.2.2"], []
    clock, sink = Clock(), MemorySink()
    runner = CycleRunner(ON, clock, RunTracker(tmp_path / "runs.db"), [sink],
                         lab_probes(answer, {"192.0.2.2"}, connects))
    await _cycles(runner, clock, 2)
    answer.remove("192.0.2.2")  # the run of .2 ends at cycle 3
    await _cycles(runner, clock, 1)
    stats = await runner.run_cycle()  # the live address and one afterlife check
    assert (stats.afterlife, stats.addresses, stats.connects) == (1, 1, 2)
    clock.t += STEP
    await _cycles(runner, clock, 4)
    step = int(STEP.total_seconds())
    # checked at ages 1 and 2 steps; at 3 steps (the duration) the afterlife is over
    assert _afterlife(sink) == [("192.0.2.2", step, "tcp.refused"),
                                ("192.0.2.2", 2 * step, "tcp.refused")]
    docs = [r.doc for r in sink.records if r.kind == "afterlife"]
    ended = next(r for r in sink.records if r.kind == "run" and "edgewatch.run.end" in r.doc)
    assert {d["edgewatch.run.id"] for d in docs} == {ended.id}
    assert all(d["event.dataset"] == "edgewatch.afterlife" and d["dns.question.name"]
               == "api.cycle.test" and d["event.outcome"] == "failure" for d in docs)
    assert runner.tracker.retired_runs() == []  # expired and committed
    stats = await runner.run_cycle()
    assert stats.afterlife == 0


async def test_the_afterlife_survives_a_restart_and_ends_when_the_address_returns(
        tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    answer, connects = ["192.0.2.1", "192.0.2.2"], []
    on = replace(ON, afterlife=Afterlife(duration_s=10 * STEP.total_seconds()))
    clock, sink = Clock(), MemorySink()
    runner = CycleRunner(on, clock, RunTracker(db), [sink], lab_probes(answer, set(), connects))
    await _cycles(runner, clock, 1)
    answer.remove("192.0.2.2")
    await _cycles(runner, clock, 2)  # retired at cycle 2, one afterlife check at cycle 3
    runner.tracker.close()
    again = CycleRunner(on, clock, RunTracker(db), [sink], lab_probes(answer, set(), connects))
    await _cycles(again, clock, 1)  # a new process: checked on
    answer.append("192.0.2.2")
    connects.clear()
    await _cycles(again, clock, 2)  # back in the answer: a new run, no afterlife documents
    step = int(STEP.total_seconds())
    assert [(a, age) for a, age, _ in _afterlife(sink)] == [("192.0.2.2", step),
                                                            ("192.0.2.2", 2 * step)]
    assert connects.count("192.0.2.2") == 2  # one check per cycle, live and afterlife shared
    assert again.tracker.retired_runs() == []


async def test_the_cap_keeps_the_most_recently_retired(tmp_path: Path) -> None:
    answer, connects = ["192.0.2.1", "192.0.2.2", "192.0.2.3"], []
    capped = replace(CONFIG, afterlife=Afterlife(duration_s=timedelta(days=1).total_seconds(),
                                                 max_addresses=1))
    clock, sink = Clock(), MemorySink()
    runner = CycleRunner(capped, clock, RunTracker(), [sink],
                         lab_probes(answer, set(), connects))
    await _cycles(runner, clock, 1)
    answer.remove("192.0.2.2")
    await _cycles(runner, clock, 1)
    answer.remove("192.0.2.3")
    await _cycles(runner, clock, 3)
    assert [a for a, _, _ in _afterlife(sink)] == ["192.0.2.2", "192.0.2.3", "192.0.2.3"]


async def test_off_by_default_keeps_no_retired_runs(tmp_path: Path) -> None:
    answer, connects = ["192.0.2.1", "192.0.2.2"], []
    clock, sink = Clock(), MemorySink()
    runner = CycleRunner(CONFIG, clock, RunTracker(tmp_path / "r.db"), [sink],
                         lab_probes(answer, set(), connects))
    await _cycles(runner, clock, 1)
    answer.remove("192.0.2.2")
    await _cycles(runner, clock, 3)
    assert _afterlife(sink) == [] and runner.tracker.retired_runs() == []


def test_the_cycle_budget_counts_the_afterlife_checks() -> None:
    t = ON.timeouts
    more = replace(ON, afterlife=Afterlife(duration_s=3600, max_addresses=10))
    assert cycle_budget(more) - cycle_budget(CONFIG) == pytest.approx(
        10 * (t.connect + t.tls + t.http) / CONFIG.limits.concurrency)


async def test_afterlife_documents_follow_ecs_and_their_strict_mapping(tmp_path: Path) -> None:
    answer, connects = ["192.0.2.1", "192.0.2.2"], []
    clock, sink = Clock(), MemorySink()
    runner = CycleRunner(ON, clock, RunTracker(), [sink],
                         lab_probes(answer, {"192.0.2.2"}, connects))
    await _cycles(runner, clock, 1)
    answer.remove("192.0.2.2")
    await _cycles(runner, clock, 2)
    docs = [r.doc for r in sink.records if r.kind == "afterlife"]
    assert docs and all(document_problems(d) == [] for d in docs)
    props = templates.effective_mappings(names.AFTERLIFE_INDEX_TEMPLATE)["properties"]
    assert mapping_problems(props) == []
    declared = templates.leaf_fields(props)
    assert {f for d in docs for f in flatten(d)} - set(declared) == set()
    assert declared["data_stream.dataset"]["value"] == "edgewatch.afterlife"


async def test_turning_the_afterlife_off_forgets_the_retired_runs(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    answer, connects = ["192.0.2.1", "192.0.2.2"], []
    clock, sink = Clock(), MemorySink()
    runner = CycleRunner(ON, clock, RunTracker(db), [sink], lab_probes(answer, set(), connects))
    await _cycles(runner, clock, 1)
    answer.remove("192.0.2.2")
    await _cycles(runner, clock, 1)
    assert [r.key.address for r in runner.tracker.retired_runs()] == ["192.0.2.2"]
    runner.tracker.close()
    off = CycleRunner(CONFIG, clock, RunTracker(db), [sink], lab_probes(answer, set(), connects))
    await _cycles(off, clock, 1)
    off.tracker.close()
    assert RunTracker(db).retired_runs() == [] and _afterlife(sink) == []


async def test_a_refused_write_puts_the_retired_runs_back(tmp_path: Path) -> None:
    """A cycle whose write fails is undone: a run it retired is open again, a retirement it
    expired is back, and the next (delivered) cycle does both again."""
    db = tmp_path / "runs.db"
    answer, connects = ["192.0.2.1", "192.0.2.2", "192.0.2.3"], []
    on = replace(ON, afterlife=Afterlife(duration_s=2 * STEP.total_seconds()))
    clock, sink = Clock(), MemorySink()
    runner = CycleRunner(on, clock, RunTracker(db), [sink], lab_probes(answer, set(), connects))
    await _cycles(runner, clock, 1)
    answer.remove("192.0.2.2")
    await _cycles(runner, clock, 1)  # .2 retired at t1 (its afterlife ends at t3)
    await _cycles(runner, clock, 1)
    answer.remove("192.0.2.3")
    sink.fail = True
    await _cycles(runner, clock, 1)  # t3: .3 retired and .2 expired, then undone
    sink.fail = False
    reopened = RunTracker(db)
    assert {r.key.address for r in reopened.open_runs()} == {"192.0.2.1", "192.0.2.3"}
    assert [r.key.address for r in reopened.retired_runs()] == ["192.0.2.2"]
    reopened.close()
    await _cycles(runner, clock, 1)  # t4: delivered
    assert [r.key.address for r in runner.tracker.retired_runs()] == ["192.0.2.3"]
    step = int(STEP.total_seconds())
    assert [(a, age) for a, age, _ in _afterlife(sink)] == [("192.0.2.2", step)]
