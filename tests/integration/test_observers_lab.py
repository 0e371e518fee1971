"""Probes in three places, one lab, one cluster (issue 13, item 3).

Three ``edgewatch run`` processes with their own ``observer.name`` / ``observer.geo`` and their
own ``[probe] source_address`` ask the same resolvers of the ``observers`` lab at the same time
and write into the same Elasticsearch namespace (each also into its own ndjson store). The lab's
pdns-recursor passes each asker's /24 on as ECS, so the three get different answers from it
(docs/LAB.md "Observers"); unbound and kresd answer all three alike. Asserted exactly: no id of
one observer is any other's (the union's size is the sum of the parts, in the stores and in the
cluster), every observer's documents and runs equal its own ground truth, a restarted observer
keeps its ids and continues its runs, and the report's "by observer" section equals the truth
from a store and from the cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from e2e_truth import both_sinks, compare_with_truth, latest_runs, polls_of, timestamp
from elasticsearch import Elasticsearch, helpers
from es_docs import flat

from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.report import build_report
from pipeline.report.es_source import ElasticsearchSource
from pipeline.report.filters import Filters
from pipeline.report.html import render_html
from pipeline.report.store_source import StoreSource
from pipeline.report.text import render_text
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration
CYCLES = 12
RESTART_CYCLES = 5
RESTARTED = "lab-fra"

lab = lab_fixture("observers", speed=900.0, scope="module")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}


def _run(config: Path, cycles: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config", str(config),
                             "--cycles", str(cycles), "--quiet"], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(proc: subprocess.Popen) -> None:
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-2000:] + err[-3000:]



def _scan(es: Elasticsearch, index: str) -> list[dict]:
    return [flat({"_id": h["_id"], **h["_source"]})
            for h in helpers.scan(es, index=index, query={"query": {"match_all": {}}})]


def _combined(stores: dict[str, Path], into: Path) -> Path:
    """One store folder holding every observer's files (same-named files concatenated): what
    copying the probes' stores onto one host gives."""
    into.mkdir(parents=True, exist_ok=True)
    for store in stores.values():
        for f in sorted(store.glob("*.ndjson")):
            with (into / f.name).open("ab") as out:
                out.write(f.read_bytes())
    return into


@pytest.fixture(scope="module")
def measured(es_url: str, lab: LabStack, tmp_path_factory: pytest.TempPathFactory):
    # (the node first: the lab's scenario clock starts with the lab; lab-kresd drops queries
    # in 43 % of the slots, never more than 10 in a row in the first three scenario days)
    work = tmp_path_factory.mktemp("observers")
    namespace = f"obs{os.getpid()}"
    configs, stores = {}, {}
    for o in lab.scenario.observers:
        folder = work / o.name
        folder.mkdir()
        configs[o.name] = folder / "edgewatch.toml"
        configs[o.name].write_text(lab.observer_config(o.name).read_text()
                                   + both_sinks(folder, es_url, namespace))
        stores[o.name] = folder / "data"
    setup = subprocess.run([sys.executable, "-m", "pipeline", "setup", "--config",
                            str(configs[RESTARTED])], capture_output=True, text=True, env=_env(),
                           timeout=300)
    assert setup.returncode == 0, setup.stderr[-3000:]
    procs = [_run(cfg, CYCLES) for cfg in configs.values()]  # at the same time
    for proc in procs:
        _wait(proc)
    before = {"checks": list(read_store(stores[RESTARTED], "checks")),
              "runs": latest_runs(read_store(stores[RESTARTED], "runs"))}
    _wait(_run(configs[RESTARTED], RESTART_CYCLES))
    return {"stores": stores, "namespace": namespace, "before": before,
            "combined": _combined(stores, work / "combined")}


def _docs(measured, name: str, kind: str) -> list[dict]:
    return list(read_store(measured["stores"][name], kind))


def _disjoint_union(parts: dict[str, set[str]]) -> set[str]:
    """The union of per-observer id sets, asserting no id belongs to two observers."""
    union = set().union(*parts.values())
    assert len(union) == sum(len(p) for p in parts.values()), {
        k: len(v) for k, v in parts.items()}
    return union


def test_no_id_of_one_observer_is_another_observers(measured, lab: LabStack,
                                                   es: Elasticsearch) -> None:
    names = [o.name for o in lab.scenario.observers]
    checks = {n: _docs(measured, n, "checks") for n in names}
    runs = {n: _docs(measured, n, "runs") for n in names}
    for field in ("_id", "edgewatch.cycle.id", "edgewatch.check.id"):
        _disjoint_union({n: {d[field] for d in checks[n]} for n in names})
    run_ids = _disjoint_union({n: {d["edgewatch.run.id"] for d in runs[n]} for n in names})
    doc_ids = _disjoint_union({n: {d["_id"] for d in checks[n]} for n in names})
    summaries = _disjoint_union({n: {d["_id"] for d in runs[n]} for n in names})
    for n in names:  # each store holds only its observer, named as configured
        geo = lab.scenario.observer(n).geo
        assert {(d["observer.name"], d["observer.geo.name"]) for d in checks[n]} == {(n, geo)}
        assert {d["observer.name"] for d in runs[n]} == {n}
        assert len({d["_id"] for d in checks[n]}) == len(checks[n])  # nothing twice

    ns = measured["namespace"]
    es.indices.refresh(index=f"logs-edgewatch.check-{ns},edgewatch-runs-{ns}")
    in_es = _scan(es, f"logs-edgewatch.check-{ns}")
    assert len(in_es) == sum(len(c) for c in checks.values())  # nothing twice, nothing lost
    assert {d["_id"] for d in in_es} == doc_ids
    es_runs = _scan(es, f"edgewatch-runs-{ns}")
    assert len(es_runs) == len(summaries) == len(run_ids)  # one summary per run, in place
    assert {d["_id"] for d in es_runs} == summaries
    assert {d["edgewatch.run.id"] for d in es_runs} == run_ids


def _stored_for(in_es: list[dict], name: str) -> list[dict]:
    return [d for d in in_es if d["observer.name"] == name]


def test_each_observer_records_its_own_truth(measured, lab: LabStack,
                                             es: Elasticsearch) -> None:
    ns = measured["namespace"]
    es_checks = _scan(es, f"logs-edgewatch.check-{ns}")
    es_runs = _scan(es, f"edgewatch-runs-{ns}")
    via_ecs: dict[str, set[str]] = {}
    for o in lab.scenario.observers:
        truth = lab.truth.for_observer(o.name)
        for checks, runs in ((_docs(measured, o.name, "checks"), _docs(measured, o.name, "runs")),
                             (_stored_for(es_checks, o.name), _stored_for(es_runs, o.name))):
            figures = compare_with_truth(lab, checks, runs, truth=truth)
            assert figures["runs"] > 0 and figures["failures"] > 0
            for d in checks:  # every edge check: what the edge does at that instant
                if "destination.ip" in d:
                    want = truth.edge_outcome(d["destination.ip"], timestamp(d["@timestamp"]))
                    assert d.get("error.type") == want, (o.name, d["destination.ip"])
        via_ecs[o.name] = {d["destination.ip"] for d in _docs(measured, o.name, "checks")
                           if d["edgewatch.resolver.name"] == "lab-pdns-ecs"
                           and "destination.ip" in d}
    # the mechanism itself: one resolver, three places, three answers (ap shares nothing)
    assert via_ecs["lab-syd"].isdisjoint(via_ecs["lab-nyc"] | via_ecs["lab-fra"])
    assert via_ecs["lab-fra"] & via_ecs["lab-nyc"] == {"127.60.0.30"}


def test_a_restarted_observer_keeps_its_ids_and_continues_its_runs(measured) -> None:
    before, after = measured["before"], _docs(measured, RESTARTED, "checks")
    ids_before = {d["_id"] for d in before["checks"]}
    assert ids_before < {d["_id"] for d in after}
    assert len(after) == len({d["_id"] for d in after})
    cycles = {d["edgewatch.cycle.id"] for d in after}
    assert len(cycles) == CYCLES + RESTART_CYCLES
    # runs still open when it stopped, seen again after the restart: the same run id, now
    # with a later sighting (not a new run, which the truth comparison would also catch)
    restart = max(timestamp(d["@timestamp"]) for d in before["checks"])
    now = latest_runs(_docs(measured, RESTARTED, "runs"))
    carried = [rid for rid, run in before["runs"].items() if run["edgewatch.run.open"]
               and timestamp(now[rid]["edgewatch.run.last_seen"]) > restart]
    assert carried


def _truth_figures(lab: LabStack, name: str, checks: list[dict]) -> dict:
    """What the by-observer section must say about ``name``, from its truth at its polls."""
    truth = lab.truth.for_observer(name)
    want = defaultdict(int)
    seen: set[str] = set()
    for (resolver, target), seq in polls_of(checks).items():
        times = [t for t, _, _ in seq]
        for t, ans in zip(times, truth.observe(resolver, target, times), strict=True):
            want["queries"] += 1
            if not ans.ok:
                want["dns_failures"] += 1
                continue
            seen |= ans.addresses
            want["address_checks"] += len(ans.addresses)
            want["address_failures"] += sum(truth.edge_outcome(a, t) is not None
                                            for a in ans.addresses)
        runs = truth.runs(resolver, target, times)
        want["runs"] += len(runs)
        want["open_runs"] += sum(r.open for r in runs)
    return {"seen": seen, **want}


def test_the_report_by_observer_equals_the_truth(measured, lab: LabStack,
                                                 es: Elasticsearch) -> None:
    from_store = build_report(StoreSource(measured["combined"]))
    from_es = build_report(ElasticsearchSource(es, namespace=measured["namespace"]))
    a, b = from_store.to_dict(), from_es.to_dict()
    for key in ("generated_at", "source"):
        a.pop(key), b.pop(key)
    assert a == b

    names = [o.name for o in lab.scenario.observers]
    want = {n: _truth_figures(lab, n, _docs(measured, n, "checks")) for n in names}
    assert [o.name for o in from_store.observers] == sorted(names)
    for fig in from_store.observers:
        w = want[fig.name]
        others = set().union(*(want[n]["seen"] for n in names if n != fig.name))
        assert fig.addresses == len(w["seen"])
        assert set(fig.only_here) == w["seen"] - others
        assert (fig.runs, fig.open_runs, fig.queries, fig.dns_failures, fig.address_checks,
                fig.address_failures) == (w["runs"], w["open_runs"], w["queries"],
                                          w["dns_failures"], w["address_checks"],
                                          w["address_failures"]), fig.name
    only = {o.name: set(o.only_here) for o in from_store.observers}
    assert {a for a in want["lab-syd"]["seen"] if a.startswith("127.63.")} <= only["lab-syd"]
    assert {a for a in want["lab-fra"]["seen"] if a.startswith("127.61.")} <= only["lab-fra"]
    assert only["lab-syd"] and only["lab-fra"]

    text, html = render_text(from_store), render_html(from_store)
    assert "By observer" in text and "<h2>By observer</h2>" in html
    for fig in from_store.observers:
        assert all(ip in text and ip in html for ip in fig.only_here)

    one = build_report(StoreSource(measured["combined"]), Filters(observers=("lab-syd",)))
    assert one.observers == [] and "By observer" not in render_text(one)
    assert one.overall.networks.addresses == len(want["lab-syd"]["seen"])
