"""Retired addresses on real parts: the lab's afterlife scenario → edgewatch run → Elasticsearch
and the ndjson store → the report's afterlife section, every figure from the ground truth.

The scenario (lab/scenarios/afterlife.toml) retires four addresses at once: one keeps serving,
one starts refusing, one presents another certificate (the edges switch behaviour on the
scenario clock), one comes back. ``GroundTruth.afterlife`` says which check a perfect observer
makes at which poll and what it sees; the stored documents and both reports must say the same.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from e2e_truth import both_sinks
from elasticsearch import Elasticsearch, helpers

from lab.stack import LabStack
from lab.truth import AfterlifeCheck
from pipeline.report import build_report
from pipeline.report.es_source import ElasticsearchSource
from pipeline.report.html import render_html
from pipeline.report.store_source import StoreSource
from pipeline.report.text import render_text
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration
SPEED = 900.0  # one 15-minute poll per real second
GRID = 900
DURATION = "4h52m30s"  # off the grid: the truth does not depend on a poll's latency
UNTIL = 8.5 * 3600  # scenario offset past the last afterlife check (8h00) and its expiry
TARGET = "acme-v02.api.lab.test"


def _edgewatch(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _config(lab: LabStack, work: Path, es_url: str, namespace: str) -> Path:
    config = work / "edgewatch.toml"
    config.write_text(lab.config_path.read_text() + both_sinks(work, es_url, namespace) + f"""
[afterlife]
duration = "{DURATION}"

""")
    return config


@pytest.fixture(scope="module")
def measured(es_url: str) -> Iterator[dict]:
    """Setup first (it takes real seconds, i.e. scenario hours), then the lab and the run."""
    namespace = f"afterlife{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="edgewatch-afterlife-") as tmp:
        work = Path(tmp)
        stack = LabStack("afterlife", speed=SPEED, run_dir=work / "lab")
        try:
            stack.start()
            config = _config(stack, work, es_url, namespace)
            _edgewatch("setup", "--config", str(config))
            assert stack.clock is not None
            offset = stack.clock.now() - stack.scenario.start
            assert offset < 2 * 3600, "the run must start before the addresses retire (3h)"
            cycles = math.ceil((UNTIL - offset) / GRID) + 1
            _edgewatch("run", "--config", str(config), "--cycles", str(cycles), "--quiet")
            yield {"lab": stack, "store": work / "data", "namespace": namespace,
                   "config": config}
        finally:
            stack.stop()


def _slot(ts: str) -> int:
    return round(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() / GRID)


def _truth(measured: dict) -> list[AfterlifeCheck]:
    lab: LabStack = measured["lab"]
    slots = sorted({_slot(d["@timestamp"]) for d in read_store(measured["store"], "checks")})
    return lab.truth.afterlife(TARGET, [s * GRID for s in slots], DURATION)


def test_the_afterlife_documents_are_the_checks_the_truth_implies(measured: dict) -> None:
    want = {(round(c.at.timestamp() / GRID), c.address, c.outcome) for c in _truth(measured)}
    docs = list(read_store(measured["store"], "afterlife"))
    got = {(_slot(d["@timestamp"]), d["destination.ip"], d.get("error.type")) for d in docs}
    assert len(docs) == len(got) == len(want)
    assert got == want
    # the scenario's four retired addresses, each with what it was designed to show
    by_address = defaultdict(set)
    for _, address, outcome in want:
        by_address[address].add(outcome)
    assert by_address == {"127.60.0.11": {None}, "127.60.0.12": {None, "tcp.refused"},
                          "127.60.0.13": {None, "tls.verify"}, "127.60.0.14": {None}}
    runs = {d["edgewatch.run.id"] for d in read_store(measured["store"], "runs")
            if d.get("edgewatch.run.end")}
    assert {d["edgewatch.run.id"] for d in docs} <= runs  # each names a run that ended
    # .14 came back at 6h07m30s: a new run, and its afterlife stopped at the poll before
    back = [d for d in read_store(measured["store"], "checks")
            if d.get("destination.ip") == "127.60.0.14"]
    last_afterlife = max(_slot(d["@timestamp"]) for d in docs
                         if d["destination.ip"] == "127.60.0.14")
    assert min(_slot(d["@timestamp"]) for d in back if _slot(d["@timestamp"]) > last_afterlife
               ) == last_afterlife + 1


def test_elasticsearch_holds_the_afterlife_documents_of_the_store(measured: dict,
                                                                  es: Elasticsearch) -> None:
    stream = f"logs-edgewatch.afterlife-{measured['namespace']}"
    es.indices.refresh(index=stream)
    in_es = {h["_id"] for h in helpers.scan(es, index=stream, query={"query": {"match_all": {}}})}
    in_store = {d["_id"] for d in read_store(measured["store"], "afterlife")}
    assert in_es == in_store and in_store


def _expected(checks: list[AfterlifeCheck]) -> dict[str, dict]:
    """Per address, the report's figures in poll slots, from the truth's checks."""
    out: dict[str, dict] = {}
    for c in sorted(checks, key=lambda c: c.at):
        age = round((c.at - c.ended).total_seconds() / GRID)
        state = ("serving" if c.outcome is None else
                 "other_certificate" if c.outcome == "tls.verify" else "refusing")
        e = out.setdefault(c.address, {"checks": 0, "serving": 0, "refusing": 0,
                                       "other_certificate": 0, "first": {}, "until": None,
                                       "broken": False, "last": 0})
        e["checks"] += 1
        e[state] += 1
        e["first"].setdefault(state, age)
        e["broken"] = e["broken"] or state != "serving"
        if not e["broken"]:
            e["until"] = age
        e["last"] = age
    return out


def _slots(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds / GRID)


def test_the_report_from_either_source_gives_the_truth_figures(measured: dict,
                                                               es: Elasticsearch) -> None:
    es.indices.refresh(index=f"logs-edgewatch.afterlife-{measured['namespace']}")
    from_es = build_report(ElasticsearchSource(es, namespace=measured["namespace"]))
    from_store = build_report(StoreSource(measured["store"]))
    assert [a.__dict__ for a in from_es.afterlife] == [a.__dict__ for a in from_store.afterlife]
    (section,) = from_store.afterlife
    want = _expected(_truth(measured))
    verdicts = {ip: "risk" if e["other_certificate"] else "dead" if e["refusing"]
                else "harmless" for ip, e in want.items()}
    assert (section.target, section.entries, section.checks) == (
        TARGET, len(want), sum(e["checks"] for e in want.values()))
    assert (section.harmless, section.dead, section.risk) == (2, 1, 1)
    assert {e.ip: e.verdict for e in section.addresses} == verdicts
    for entry in section.addresses:
        e = want[entry.ip]
        assert (entry.checks, entry.serving, entry.refusing, entry.other_certificate) == (
            e["checks"], e["serving"], e["refusing"], e["other_certificate"]), entry.ip
        assert (_slots(entry.served_until_s), _slots(entry.first_refusing_s),
                _slots(entry.first_other_certificate_s), _slots(entry.last_age_s)) == (
            e["until"], e["first"].get("refusing"), e["first"].get("other_certificate"),
            e["last"]), entry.ip
    # the scenario's design, in poll slots after retirement (3h15)
    assert want["127.60.0.12"]["first"]["refusing"] == 4  # refusing at 4h15
    assert want["127.60.0.13"]["first"]["other_certificate"] == 8  # wrong_name at 5h15
    assert section.verdict.startswith("risk: 1 of 4")
    assert "Retired addresses" in render_text(from_store)
    html = render_html(from_store)
    assert "Retired addresses (afterlife)" in html and html.count("<svg") >= 2


def test_load_moves_the_afterlife_documents_into_a_fresh_namespace(
        measured: dict, es: Elasticsearch, tmp_path: Path) -> None:
    namespace = f"afterload{os.getpid()}"
    config = tmp_path / "load.toml"
    text = measured["config"].read_text().replace(measured["namespace"], namespace)
    config.write_text(text.replace(str(measured["config"].parent / "spool"),
                                   str(tmp_path / "spool")))
    _edgewatch("setup", "--config", str(config))
    _edgewatch("load", "--config", str(config), "--quiet", "--strict")
    stream = f"logs-edgewatch.afterlife-{namespace}"
    es.indices.refresh(index=stream)
    in_es = {h["_id"] for h in helpers.scan(es, index=stream, query={"query": {"match_all": {}}})}
    assert in_es == {d["_id"] for d in read_store(measured["store"], "afterlife")}
