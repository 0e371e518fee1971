"""Verdicts and once-per-run events through the real cycle, with canned probes (no network):
a new address outside every list is one event per run, across a restart and a list change."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from ecs_rules import document_problems
from test_cycle import CONFIG, STEP, T0, Clock, MemorySink, canned

from pipeline.config import Allowlist
from pipeline.cycle import CycleRunner
from pipeline.es import names, templates
from pipeline.runs import RunTracker


def _bump(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


async def _cycle(runner: CycleRunner, clock: Clock, n: int, answer: list[str],
                 addrs: list[str]) -> None:
    clock.t, answer[:] = T0 + n * STEP, addrs
    stats = await runner.run_cycle()
    assert stats.delivered


async def test_verdicts_and_one_event_per_run_across_restart_and_list_change(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fw, eu = tmp_path / "fw.txt", tmp_path / "eu.nft"
    fw.write_text("127.0.0.0/30\n")
    eu.write_text("table inet t {\n\tset s4 {\n\t\telements = { 127.0.1.0/24 }\n\t}\n}\n")
    config = replace(CONFIG, allowlists=(Allowlist("fw", fw), Allowlist("eu", eu)))
    db, sink, clock, answer = tmp_path / "runs.sqlite3", MemorySink(), Clock(), []
    runner = CycleRunner(config, clock, RunTracker(db), [sink], probes=canned(answer, []))
    caplog.set_level(logging.WARNING, logger="pipeline.cycle")
    await _cycle(runner, clock, 0, answer, ["127.0.0.1", "127.0.0.9"])  # .9: in no list
    await _cycle(runner, clock, 1, answer, ["127.0.0.1", "127.0.0.9"])  # same runs: no event
    await runner.close()
    runner = CycleRunner(config, clock, RunTracker(db), [sink], probes=canned(answer, []))
    await _cycle(runner, clock, 2, answer, ["127.0.0.1", "127.0.0.9"])  # restarted: still none
    await _cycle(runner, clock, 3, answer, ["127.0.1.7"])  # allowed by eu: no event
    _bump(fw, "127.0.0.0/31\n")  # 127.0.0.1 stays; nothing newly out
    await _cycle(runner, clock, 4, answer, ["127.0.0.1", "127.0.0.9", "127.0.1.7"])  # .9: new run
    _bump(eu, "127.0.2.0/24\n")  # the open run of 127.0.1.7 (seq 3 next) leaves every list
    await _cycle(runner, clock, 5, answer, ["127.0.1.7", "127.0.0.1"])
    await _cycle(runner, clock, 6, answer, ["127.0.1.7", "127.0.0.1"])
    await runner.close()

    checks = [r for r in sink.records if r.kind == "check"]
    events = [r for r in sink.records if r.kind == "event"]
    for c in checks:
        ip = c.doc["destination.ip"]
        at = (c.timestamp - T0) // STEP
        fw_has = ip == "127.0.0.1"
        eu_has = ip == "127.0.1.7" and at < 5
        assert c.doc["edgewatch.allowlist.allowed"] == [n for n, has in (("fw", fw_has),
                                                                         ("eu", eu_has)) if has]
        assert sorted(c.doc["edgewatch.allowlist.allowed"] + c.doc["edgewatch.allowlist.denied"]
                      ) == ["eu", "fw"]
    got = [((e.timestamp - T0) // STEP, e.doc["destination.ip"]) for e in events]
    runs_of_17 = {c.doc["edgewatch.run.id"] for c in checks
                  if c.doc["destination.ip"] == "127.0.1.7"}
    assert len(runs_of_17) == 1  # the event at cycle 5 is the list change, not a new run
    assert got == [(0, "127.0.0.9"), (4, "127.0.0.9"), (5, "127.0.1.7")]
    assert len({e.id for e in events}) == len({e.doc["edgewatch.run.id"] for e in events}) == 3
    e = events[2].doc
    assert (e["event.kind"], e["event.action"], e["event.dataset"]) == (
        "alert", "allowlist-miss", "edgewatch.event")
    assert (e["edgewatch.allowlist.denied"], e["edgewatch.allowlist.allowed"]) == (["fw", "eu"], [])
    assert e["dns.question.name"] == "api.cycle.test" and e["edgewatch.resolver.name"] == "r1"
    warnings = [r.getMessage() for r in caplog.records if "allowlist miss" in r.getMessage()]
    assert len(warnings) == 3 and "127.0.1.7" in warnings[2] and "r1" in warnings[2]
    declared = set(templates.leaf_fields(
        templates.effective_mappings(names.EVENT_INDEX_TEMPLATE)["properties"]))
    for ev in events:
        assert document_problems(ev.doc) == [], ev.doc
        assert set(ev.doc) - declared == set()


async def test_without_lists_no_verdict_fields_and_no_events(tmp_path: Path) -> None:
    sink, clock, answer = MemorySink(), Clock(), ["127.0.0.9"]
    runner = CycleRunner(CONFIG, clock, RunTracker(), [sink], probes=canned(answer, []))
    await runner.run_cycle()
    clock.t = T0 + timedelta(minutes=15)
    await runner.run_cycle()
    assert {r.kind for r in sink.records} == {"check", "run"}
    assert not any(k.startswith("edgewatch.allowlist") for r in sink.records for k in r.doc)
