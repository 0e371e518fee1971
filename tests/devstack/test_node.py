"""The devstack node is a real Elasticsearch: the client talks to it as to any cluster."""

from __future__ import annotations

import urllib.request

import pytest
from elasticsearch import Elasticsearch, helpers

pytestmark = pytest.mark.integration


def test_root_answers_like_any_cluster(es_url: str, es: Elasticsearch) -> None:
    with urllib.request.urlopen(es_url + "/") as resp:
        assert resp.headers["X-Elastic-Product"] == "Elasticsearch"
    info = es.info()
    major = int(info["version"]["number"].split(".")[0])
    client_major = int(__import__("elasticsearch").__versionstr__.split(".")[0])
    assert major == client_major == 9
    assert info["tagline"] == "You Know, for Search"


def test_explicit_mapping_bulk_terms_cardinality_and_cidr(
    es: Elasticsearch, es_namespace: str
) -> None:
    index = f"{es_namespace}-checks"
    es.indices.create(
        index=index,
        settings={"number_of_shards": 1, "number_of_replicas": 0},
        mappings={
            "dynamic": "strict",
            "properties": {
                "@timestamp": {"type": "date"},
                "resolver": {"properties": {"name": {"type": "keyword"}}},
                "destination": {"properties": {"ip": {"type": "ip"}}},
                "dns": {"properties": {"answer": {"properties": {"ttl": {"type": "long"}}}}},
            },
        },
    )
    rows = [
        ("r1", "127.60.0.5"), ("r1", "127.60.0.6"), ("r1", "127.60.0.5"),
        ("r2", "127.61.0.9"), ("r2", "127.60.0.5"),
    ]
    actions = (
        {
            "_op_type": "create",
            "_index": index,
            "_id": f"d{i}",
            "@timestamp": f"2026-03-02T00:{i:02d}:00Z",
            "resolver.name": resolver,
            "destination.ip": ip,
            "dns.answer.ttl": 20,
        }
        for i, (resolver, ip) in enumerate(rows)
    )
    ok, errors = helpers.bulk(es, actions, refresh="wait_for")
    assert ok == len(rows) and not errors

    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["properties"]["destination"]["properties"]["ip"]["type"] == "ip"

    resp = es.search(
        index=index,
        size=0,
        aggs={
            "by_resolver": {
                "terms": {"field": "resolver.name"},
                "aggs": {"unique_ips": {"cardinality": {"field": "destination.ip"}}},
            }
        },
    )
    buckets = {b["key"]: b for b in resp["aggregations"]["by_resolver"]["buckets"]}
    assert buckets["r1"]["doc_count"] == 3
    assert buckets["r1"]["unique_ips"]["value"] == 2
    assert buckets["r2"]["unique_ips"]["value"] == 2

    in_edge_a = es.count(index=index, query={"term": {"destination.ip": "127.60.0.0/24"}})
    assert in_edge_a["count"] == 4

    with pytest.raises(Exception, match="strict_dynamic_mapping_exception"):
        es.index(index=index, document={"@timestamp": "2026-03-02T00:00:00Z", "surprise": 1})


def test_a_killed_test_process_leaves_no_node_behind() -> None:
    """kill -9 of the process that started a node (as a crashed pytest would be) stops it; and
    what the launcher writes to a temp folder goes to the node's run folder."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    # not pytest's run_dir: its parent is closed to the node's user
    run_dir = Path(tempfile.mkdtemp(prefix="edgewatch-orphan-"))

    root = Path(__file__).resolve().parents[2]
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from devstack.node import start_node\n"
        f"node = start_node(run_dir=Path({str(run_dir)!r}), die_with_parent=True)\n"
        "print(node.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=root, stdout=subprocess.PIPE,
                            text=True)
    try:
        launcher = int(proc.stdout.readline())
        # the launcher's JVM-flags probe left its folder in the run folder, not in /tmp
        flags_probe = list((run_dir / "tmp").glob("final-flags*"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def node_processes() -> list[int]:
        pids = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if str(run_dir) in cmdline.read_bytes().decode(errors="replace"):
                    pids.append(int(cmdline.parent.name))
            except OSError:
                continue
        return pids

    deadline = time.monotonic() + 60
    while node_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = node_processes()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(run_dir, ignore_errors=True)
    assert launcher > 0 and not left
    assert flags_probe
