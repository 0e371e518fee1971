"""Every panel's query on a real dual-stack store: the lab in its namespace → store → the node.

``edgewatch run`` runs a few cycles inside the ``dualstack`` lab's network namespace (its IPv6
edges are fd00::/8 addresses that exist only there) and writes the ndjson store; ``edgewatch
load``, outside, moves the store into a fresh namespace of the test Elasticsearch node; then
every Vega panel's query runs as Kibana would send it over the store's time span. No figure is
worked out here (``test_kibana_vega_queries`` does that on hand-made documents): what this shows
is that what the pipeline really writes for both families goes through every panel without an
error, and that every panel has IPv6 rows whose addresses are the store's own.
"""

from __future__ import annotations

import ipaddress
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from kibana_vega import KibanaContext, dashboard_query
from panel_documents import ALL_PANELS, Indices, edgewatch, loaded_store, run_panel

from lab.netinfo import ptr_name
from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration
CYCLES = 8

lab = lab_fixture("dualstack", speed=900.0, scope="module")



@pytest.fixture(scope="module")
def loaded(lab: LabStack, es: Elasticsearch, es_url: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Indices, Path]]:
    work = tmp_path_factory.mktemp("kibana-dualstack")
    ns = f"kib6{os.getpid()}"
    store = work / "data"
    run_config = work / "run.toml"
    run_config.write_text(lab.config_path.read_text() + f"""
[store]
dir = "{store}"

[state]
dir = "{work / 'state'}"
""")
    edgewatch("run", "--config", str(run_config), "--cycles", str(CYCLES), "--quiet",
              prefix=lab.exec_prefix)
    # outside the namespace, where the node is
    with loaded_store(es, es_url, ns, run_config, edgewatch) as made:
        yield made, store


def _ts(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))


def store_span(store: Path) -> KibanaContext:
    """The time picker over the store's checks, a minute either side."""
    times = [_ts(d) for d in read_store(store, "checks")]
    return KibanaContext(min(times) - timedelta(minutes=1), max(times) + timedelta(minutes=1))


def store_ipv6(store: Path) -> set[str]:
    return {d["destination.ip"] for d in read_store(store, "checks")
            if ":" in d.get("destination.ip", "")}


def test_the_store_is_dual_stack(loaded: tuple[Indices, Path]) -> None:
    _, store = loaded
    checks = list(read_store(store, "checks"))
    assert {d["dns.question.type"] for d in checks} == {"A", "AAAA"}
    v6 = store_ipv6(store)
    assert v6 and all(ipaddress.ip_address(a) in ipaddress.ip_network("fd00::/8") for a in v6)


AAAA_ONLY = [{"match_phrase": {"dns.question.type": "AAAA"}}]


def aaaa(span: KibanaContext) -> KibanaContext:
    return KibanaContext(span.time_min, span.time_max, dashboard_query(AAAA_ONLY))


def v6_checks(store: Path) -> list[dict[str, Any]]:
    return [d for d in read_store(store, "checks") if d["dns.question.type"] == "AAAA"]


@pytest.mark.parametrize("vis_id", ALL_PANELS)
def test_every_panel_runs_on_the_lab_store(
        es: Elasticsearch, objects: list[dict[str, Any]], loaded: tuple[Indices, Path],
        vis_id: str) -> None:
    """Both families, then AAAA alone: no shard failure, rows at format.property, not empty."""
    made, store = loaded
    span = store_span(store)
    for ctx in (span, aaaa(span)):
        rows, _ = run_panel(es, objects, made, vis_id, ctx)
        assert sum(r["doc_count"] for r in rows) > 0, (vis_id, ctx.query)


def test_ipv6_addresses_per_resolver(es: Elasticsearch, objects: list[dict[str, Any]],
                                     loaded: tuple[Indices, Path]) -> None:
    made, store = loaded
    rows, _ = run_panel(es, objects, made, "edgewatch-unique-ips-per-resolver", store_span(store))
    got = {r["key"]: f["unique_ips"]["value"] for r in rows for f in r["families"]["buckets"]
           if f["key"] == "AAAA"}
    want: dict[str, set[str]] = defaultdict(set)
    for d in v6_checks(store):
        want[d["edgewatch.resolver.name"]].update([d["destination.ip"]] if "destination.ip" in d
                                                  else [])
    assert got == {r: len(ips) for r, ips in want.items()}
    assert any(got.values())


def test_ipv6_first_sightings_are_the_stores(es: Elasticsearch, objects: list[dict[str, Any]],
                                            loaded: tuple[Indices, Path]) -> None:
    made, store = loaded
    rows, _ = run_panel(es, objects, made, "edgewatch-new-ips-over-time",
                        aaaa(store_span(store)))
    first: dict[str, int] = {}
    for d in v6_checks(store):
        if "destination.ip" in d:
            t = int(_ts(d).timestamp() * 1000)
            first[d["destination.ip"]] = min(t, first.get(d["destination.ip"], t))
    assert first and {r["key"]: r["first_seen"]["value"] for r in rows} == first


def test_ipv6_failures_are_the_stores(es: Elasticsearch, objects: list[dict[str, Any]],
                                      loaded: tuple[Indices, Path]) -> None:
    made, store = loaded
    rows, _ = run_panel(es, objects, made, "edgewatch-failures-by-resolver-kind",
                        aaaa(store_span(store)))
    got = {r["key"]: {k["key"]: k["doc_count"] for k in r["kinds"]["buckets"]} for r in rows}
    want: dict[str, Counter[str]] = defaultdict(Counter)
    for d in v6_checks(store):
        if d["event.outcome"] == "failure":
            want[d["edgewatch.resolver.name"]][d.get("error.type", "(unclassified)")] += 1
    assert got == {r: dict(c) for r, c in want.items()}
    assert any(k.startswith(("tcp.", "tls.")) for c in got.values() for k in c)  # edge failures


def test_ipv6_edge_hostnames_are_ip6_arpa_names(es: Elasticsearch, objects: list[dict[str, Any]],
                                                lab: LabStack,
                                                loaded: tuple[Indices, Path]) -> None:
    """The AAAA rows of the hostname panel are the lab's PTR names of its IPv6 edges."""
    made, store = loaded
    rows, _ = run_panel(es, objects, made, "edgewatch-edge-hostnames", aaaa(store_span(store)))
    names_shown = {r["key"] for r in rows} - {"(no PTR)"}
    lab_names = set()
    for d in v6_checks(store):
        if "destination.ip" in d:
            net = lab.scenario.network_of(d["destination.ip"])
            assert net is not None
            lab_names.add(ptr_name(net, d["destination.ip"]))
    assert names_shown and names_shown <= lab_names
    assert all("fd00-" in n for n in names_shown)


def test_ipv6_runs_and_timings(es: Elasticsearch, objects: list[dict[str, Any]],
                               loaded: tuple[Indices, Path]) -> None:
    made, store = loaded
    ctx = aaaa(store_span(store))
    rows, _ = run_panel(es, objects, made, "edgewatch-most-stable-ips", ctx)
    v6 = {d["destination.ip"] for d in v6_checks(store) if "destination.ip" in d}
    assert rows and {r["key"] for r in rows} <= v6
    rows, _ = run_panel(es, objects, made, "edgewatch-handshake-per-resolver", ctx)
    shaken = {d["edgewatch.resolver.name"] for d in v6_checks(store)
              if "tls.rtt.handshake.us" in d}
    assert shaken and {r["key"] for r in rows
                       if r["tls_handshake"]["values"][0]["value"] is not None} == shaken
    rows, _ = run_panel(es, objects, made, "edgewatch-timings-over-time", ctx)
    assert any(r["tls_handshake"]["values"][0]["value"] is not None for r in rows)
