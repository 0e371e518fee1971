"""Faults of a real three-node cluster while two probes write: a data node SIGKILLed and
restarted, the elected master SIGKILLed (a new one elected) and restarted, and the check data
stream's backing indices and the runs index made read-only for a while.

Two ``edgewatch run`` processes (observers ``probe-a`` and ``probe-b``, both sinks: their own
ndjson store and the cluster, one namespace) measure the lab on an accelerated clock throughout.
``probe-a`` talks to a member that is never killed, ``probe-b`` to the data node that is killed
first, so one probe meets a cluster that lost a node and the other loses its node altogether.
Afterwards, per probe, against its ndjson store: expected / indexed / duplicated / lost =
N / N / 0 / 0 by ``_id`` and by content, the spool is empty, and the runs index holds exactly the
store's run summaries. The module's cluster is its own (three devstack nodes, 512 MiB heap each,
dying with this process) and is always stopped.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_probes import HEALTH, GaugeWatch, Probe, indexed_count, scan, wait_growth
from elasticsearch import Elasticsearch, helpers
from es_docs import flat

from devstack.cluster import Cluster, start_cluster
from devstack.node import free_port
from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.es import names
from pipeline.sinks.spool import opened

# Forming the cluster and two node restarts take minutes on this shared 2-core machine (each
# restart 1-2.5 min at a load average of 20+), more than the suite's 600 s per test; the module's
# fixture runs in the first test's time.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

NAMESPACE = "cluster"
STREAM, RUNS = names.check_data_stream(NAMESPACE), names.runs_index(NAMESPACE)
GROWTH = 200  # check lines each probe measures between two steps: about three cycles
lab = lab_fixture("quick", speed=600.0, scope="module")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="edgewatch-cluster-"))
    try:
        # raises DevstackError (the test errors, never skips); stops what started on failure
        c = start_cluster(base, nodes=3, heap="512m", die_with_parent=True)
        try:
            yield c
        finally:
            c.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _block(es: Elasticsearch, on: bool) -> None:
    es.indices.put_settings(index=f"{STREAM},{RUNS}", settings={"index.blocks.write": on})


def _caught_up(es: Elasticsearch, probes: list[Probe], timeout: float = 240.0) -> float:
    """Seconds until the cluster holds as many check documents per probe as its store."""
    t0 = time.monotonic()
    while any(indexed_count(es, STREAM, p.name) < p.check_lines() for p in probes):
        assert time.monotonic() - t0 < timeout, "the spools did not drain"
        time.sleep(0.5)
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def faults(cluster: Cluster, lab: LabStack, tmp_path_factory: pytest.TempPathFactory):
    """Run the probes through the three faults; the figures of each step."""
    work = tmp_path_factory.mktemp("cluster-faults")
    es = Elasticsearch(cluster.urls, request_timeout=30, max_retries=5, retry_on_timeout=True)
    a = Probe("probe-a", work / "a", cluster.urls[0], NAMESPACE, metrics_port=free_port())
    a.write_config(lab)
    setup_out = a.edgewatch("setup").stdout
    es.cluster.health(wait_for_status="green", timeout="120s")
    # The data node to kill: not the master, and holding a copy of the runs index (setup just
    # created it on two of the three nodes), so that its loss makes the cluster yellow.
    master = cluster.master()
    holders = {s["node"] for s in es.cat.shards(index=RUNS, format="json").body}
    victim = next(m for m in cluster.members if m.name in holders and m.name != master)
    steady = next(m for m in cluster.members if m.name not in (master, victim.name))
    a.es_url = steady.url
    probes = [a, Probe("probe-b", work / "b", victim.url, NAMESPACE)]
    for p in probes:
        p.write_config(lab)
    fig: dict = {"formed_s": cluster.formed_in_s, "setup": setup_out, "victim": victim.name}
    gauge = GaugeWatch(f"http://127.0.0.1:{probes[0].metrics_port}/metrics",
                       "edgewatch_elasticsearch_cluster_health")
    fig["gauge"] = gauge.values
    try:
        for p in probes:
            p.start()
        gauge.__enter__()
        wait_growth(probes, GROWTH)

        cluster.kill(victim.name)  # 1. a data node that is not the master
        t0 = time.monotonic()
        wait_growth(probes[:1], GROWTH)  # probe-b spools: its node is gone
        cluster.restart(victim.name)
        fig["data_node_rejoined_s"] = time.monotonic() - t0
        cluster.wait_for_status("green")
        fig["data_node_green_s"] = time.monotonic() - t0
        wait_growth(probes, GROWTH)

        old_master = cluster.master()  # 2. the elected master
        assert old_master is not None
        fig["old_master"] = old_master
        cluster.kill(old_master)
        t0 = time.monotonic()
        while cluster.master() in (None, old_master):
            assert time.monotonic() - t0 < 120, "no new master elected"
            time.sleep(0.2)
        fig["elected_s"], fig["new_master"] = time.monotonic() - t0, cluster.master()
        wait_growth([p for p in probes if p.es_url != cluster.member(old_master).url], GROWTH)
        cluster.restart(old_master)
        cluster.wait_for_status("green")
        fig["master_green_s"] = time.monotonic() - t0
        wait_growth(probes, GROWTH)

        _block(es, True)  # 3. read-only backing indices and runs index
        t0 = time.monotonic()
        wait_growth(probes, 2 * GROWTH)
        _block(es, False)
        fig["blocked_s"] = time.monotonic() - t0
        fig["drained_s"] = _caught_up(es, probes)
        wait_growth(probes, GROWTH)
        _caught_up(es, probes)
    finally:
        gauge.__exit__()
        for p in probes:
            fig[f"rc {p.name}"] = p.stop()
        with contextlib.suppress(Exception):  # a failed step may have left the block on
            _block(es, False)
    es.indices.refresh(index=f"{STREAM},{RUNS}")
    yield {"probes": probes, "es": es, "fig": fig}
    es.close()


def test_setup_gives_one_replica_on_three_data_nodes(faults) -> None:
    es = faults["es"]
    assert "auto: 3 data node(s)" in faults["fig"]["setup"]
    for index in (RUNS, STREAM):
        for body in es.indices.get_settings(index=index, flat_settings=True).body.values():
            assert body["settings"]["index.number_of_replicas"] == "1"
            assert body["settings"].get("index.auto_expand_replicas", "false") == "false"


def test_every_document_is_in_the_cluster_once_with_its_content(faults) -> None:
    es, fig = faults["es"], faults["fig"]
    for p in faults["probes"]:
        assert fig[f"rc {p.name}"] == 0, p.log()[-3000:]
        stored = {d["_id"]: d for d in p.checks()}
        in_es = scan(es, STREAM, p.name)
        copies = Counter(d["_id"] for d in in_es)
        expected, indexed = len(stored), len(in_es)
        duplicated = sum(n - 1 for n in copies.values())
        lost = len(stored.keys() - copies.keys())
        differ = sum(1 for d in in_es if flat(d) != stored.get(d["_id"]))
        fig[p.name] = (expected, indexed, duplicated, lost)
        print(f"{p.name}: expected / indexed / duplicated / lost = "
              f"{expected} / {indexed} / {duplicated} / {lost}; content differs: {differ}")
        assert expected > 0
        assert (indexed, duplicated, lost, differ) == (expected, 0, 0, 0)
        assert copies.keys() == stored.keys()  # nothing indexed that the store lacks


def test_spools_drained_and_nothing_dead_lettered(faults) -> None:
    for p in faults["probes"]:
        with opened(p.work / "spool") as spool:
            assert spool.pending_entries == 0, p.name
        dead = list((p.work / "dead-letter").glob("*.ndjson"))
        assert all(f.stat().st_size == 0 for f in dead), p.name


def test_runs_index_equals_the_stores_runs(faults) -> None:
    es = faults["es"]
    for p in faults["probes"]:
        in_es = {d["edgewatch.run.id"]: flat(d) for d in scan(es, RUNS, p.name)}
        in_store = p.runs()
        assert in_es.keys() == in_store.keys(), p.name
        assert len(in_es) > 0
        for rid, doc in in_es.items():
            want = {k: v for k, v in in_store[rid].items() if k != "_id"}
            assert {k: v for k, v in doc.items() if k != "_id"} == want, (p.name, rid)
        ids = [h["_id"] for h in helpers.scan(es, index=RUNS, _source=False,
                                                query={"query": {"term": {
                                                    "observer.name": p.name}}})]
        assert len(ids) == len(set(ids)) == len(in_store)


def test_yellow_health_was_reported_on_change_and_measuring_went_on(faults) -> None:
    fig = faults["fig"]
    a = faults["probes"][0]  # its node lived through the data node's loss
    lines = a.health_lines()
    statuses = [line.split(HEALTH, 1)[1].split()[0].rstrip(":") for line in lines]
    assert "yellow" in statuses and "green" in statuses, lines
    # the gauge as Prometheus saw it: yellow (1) while a node was missing, green (0) at the end
    assert 1.0 in fig["gauge"] and fig["gauge"][-1] == 0.0, fig["gauge"]
    # logged when it changes, never twice in a row for one status
    assert all(x != y for x, y in itertools.pairwise(statuses)), statuses
    for p in faults["probes"]:
        assert all("WARNING" in line for line in p.health_lines())
    print(f"three-node cluster formed in {fig['formed_s']:.1f}s; data node {fig['victim']}"
          f" rejoined {fig['data_node_rejoined_s']:.1f}s after its kill, green after "
          f"{fig['data_node_green_s']:.1f}s; master {fig['old_master']} killed: "
          f"{fig['new_master']} elected in {fig['elected_s']:.1f}s, green again after "
          f"{fig['master_green_s']:.1f}s; write block held {fig['blocked_s']:.1f}s, spools "
          f"drained {fig['drained_s']:.1f}s after the lift; health lines of probe-a: "
          f"{statuses}; its gauge: {fig['gauge']}")
