"""The whole chain on real parts: lab → edgewatch run → Elasticsearch (and the ndjson store at the
same time) → edgewatch report, every stage compared with the lab's ground truth."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from e2e_truth import both_sinks, compare_with_truth, latest_runs, polls_of
from elasticsearch import Elasticsearch, helpers
from es_docs import flat

from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.report import build_report
from pipeline.report.es_source import ElasticsearchSource
from pipeline.report.store_source import StoreSource
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration
CYCLES = 24


lab = lab_fixture("quick", speed=900.0, scope="module")


def _edgewatch(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _scan(es: Elasticsearch, index: str) -> list[dict]:
    return [{"_id": h["_id"], **h["_source"]}
            for h in helpers.scan(es, index=index, query={"query": {"match_all": {}}})]



@pytest.fixture(scope="module")
def measured(lab: LabStack, es_url: str, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("e2e-es")
    namespace = f"e2e{os.getpid()}"
    config = work / "edgewatch.toml"
    config.write_text(lab.config_path.read_text() + both_sinks(work, es_url, namespace))
    first = _edgewatch("setup", "--config", str(config)).stdout
    again = _edgewatch("setup", "--config", str(config)).stdout
    _edgewatch("run", "--config", str(config), "--cycles", str(CYCLES), "--quiet")
    return {"config": config, "store": work / "data", "namespace": namespace,
            "spool": work / "spool", "dead": work / "dead-letter", "setup": (first, again)}


def test_setup_is_idempotent(measured) -> None:
    first, again = measured["setup"]
    assert "created" in first
    assert "created" not in again and "updated" not in again


def test_elasticsearch_holds_exactly_what_the_store_holds(measured, es: Elasticsearch) -> None:
    ns = measured["namespace"]
    es.indices.refresh(index=f"logs-edgewatch.check-{ns},edgewatch-runs-{ns}")
    in_es = _scan(es, f"logs-edgewatch.check-{ns}")
    in_store = list(read_store(measured["store"], "checks"))
    assert len(in_es) == len({d["_id"] for d in in_es})  # nothing twice
    assert {d["_id"] for d in in_es} == {d["_id"] for d in in_store}  # nothing lost
    by_id = {d["_id"]: d for d in in_store}
    for doc in in_es[:200]:
        assert flat(doc) == by_id[doc["_id"]]
    assert not list(measured["dead"].glob("*.ndjson")) or all(
        p.stat().st_size == 0 for p in measured["dead"].glob("*.ndjson"))
    runs_es = {d["edgewatch.run.id"]: d
               for d in (flat(x) for x in _scan(es, f"edgewatch-runs-{ns}"))}
    runs_store = latest_runs(read_store(measured["store"], "runs"))
    assert runs_es.keys() == runs_store.keys()
    for rid, doc in runs_es.items():
        want = {k: v for k, v in runs_store[rid].items() if k != "_id"}
        assert {k: v for k, v in doc.items() if k != "_id"} == want


def test_elasticsearch_documents_equal_the_ground_truth(measured, lab: LabStack,
                                                        es: Elasticsearch) -> None:
    ns = measured["namespace"]
    checks = [flat(d) for d in _scan(es, f"logs-edgewatch.check-{ns}")]
    runs = [flat(d) for d in _scan(es, f"edgewatch-runs-{ns}")]
    figures = compare_with_truth(lab, checks, runs)
    assert figures["runs"] > 0
    # CIDR term query on the ip field and a terms aggregation on edgewatch.resolver.name
    in_a = sum(1 for d in checks if d.get("destination.ip", "").startswith("127.60.0."))
    got = es.count(index=f"logs-edgewatch.check-{ns}",
                   query={"term": {"destination.ip": "127.60.0.0/24"}})["count"]
    assert got == in_a > 0
    aggs = es.search(index=f"logs-edgewatch.check-{ns}", size=0,
                     aggs={"r": {"terms": {"field": "edgewatch.resolver.name", "size": 50}}})
    want = Counter(d["edgewatch.resolver.name"] for d in checks)
    assert {b["key"]: b["doc_count"] for b in aggs["aggregations"]["r"]["buckets"]} == want


def test_report_from_either_source_equals_the_ground_truth(measured, lab: LabStack,
                                                           es: Elasticsearch) -> None:
    ns = measured["namespace"]
    from_es = build_report(ElasticsearchSource(es, namespace=ns))
    from_store = build_report(StoreSource(measured["store"]))
    a, b = from_es.to_dict(), from_store.to_dict()
    for key in ("generated_at", "source"):
        a.pop(key), b.pop(key)
    assert a == b

    truth = lab.truth
    polls = polls_of(read_store(measured["store"], "checks"))
    for resolver in lab.scenario.resolvers:
        fig = from_es.resolver(resolver.name)
        want_addresses: set[str] = set()
        want_runs, want_open, want_fail = 0, 0, Counter()
        for target in lab.scenario.targets:
            times = [t for t, _, _ in polls[(resolver.name, target.name)]]
            answers = truth.observe(resolver.name, target.name, times)
            for ans in answers:
                want_addresses |= ans.addresses if ans.ok else set()
                if ans.error_type:
                    want_fail[ans.error_type] += 1
            runs = truth.runs(resolver.name, target.name, times)
            want_runs += len(runs)
            want_open += sum(r.open for r in runs)
        assert fig.networks.addresses == len(want_addresses), resolver.name
        assert (fig.run_length.runs, fig.run_length.open) == (want_runs, want_open)
        got_fail = {f.kind: f.failures for f in fig.failures
                    if f.kind.startswith("dns.") and f.unit == "query"}
        assert got_fail == dict(want_fail), resolver.name
        assert fig.queries == sum(len(polls[(resolver.name, t.name)])
                                  for t in lab.scenario.targets)
    # coverage: the 100% allowlist by address is exactly the set of addresses that served
    # successful checks, and it never needs more entries than there are such addresses
    ok_addresses = {d["destination.ip"] for d in read_store(measured["store"], "checks")
                    if d.get("event.outcome") == "success"}
    cov = from_es.coverage_by("ip")
    assert cov.distinct == len(ok_addresses)
    assert all(level.entries <= cov.distinct for level in cov.levels)
    start = datetime.fromisoformat(from_es.window.start.replace("Z", "+00:00"))
    assert start.timestamp() == pytest.approx(min(t for p in polls.values() for t, _, _ in p),
                                              abs=1.0)


def test_load_moves_a_local_store_into_the_cluster_once(measured, es: Elasticsearch,
                                                        tmp_path: Path, es_url: str) -> None:
    """A store written without a cluster, loaded twice into a fresh namespace: equal, no twins."""
    namespace = f"load{os.getpid()}"
    config = tmp_path / "load.toml"
    text = measured["config"].read_text().replace(measured["namespace"], namespace)
    text = text.replace(str(measured["config"].parent / "spool"), str(tmp_path / "spool"))
    config.write_text(text)
    _edgewatch("setup", "--config", str(config))
    first = _edgewatch("load", "--config", str(config), "--quiet").stdout
    second = _edgewatch("load", "--config", str(config), "--quiet").stdout
    stored = list(read_store(measured["store"], "checks"))
    runs = latest_runs(read_store(measured["store"], "runs"))
    # the second load stores no check again; only run summaries of an equal version are
    # rewritten in place (external_gte accepts an equal version), never a second document
    stored_again = int(second.split(": ", 1)[1].split(" stored")[0].replace(",", ""))
    assert stored_again <= len(runs)
    assert "0 refused" in first and "0 refused" in second
    es.indices.refresh(index=f"logs-edgewatch.check-{namespace}")
    in_es = _scan(es, f"logs-edgewatch.check-{namespace}")
    assert sorted(d["_id"] for d in in_es) == sorted(d["_id"] for d in stored)
    got = {d["edgewatch.run.id"]: d
           for d in (flat(x) for x in _scan(es, f"edgewatch-runs-{namespace}"))}
    assert got.keys() == runs.keys()
    assert all(got[r]["edgewatch.run.checks"] == runs[r]["edgewatch.run.checks"] for r in runs)
