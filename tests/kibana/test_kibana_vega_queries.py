"""Every Vega panel's query, as Kibana would send it, run on a real Elasticsearch node.

The check documents and run summaries below follow schema 2 of docs/DOCUMENTS.md and go into a
data stream and an index created by edgewatch's own templates (``pipeline.es.installer``: strict
mappings, so a document that strays from the schema fails here rather than charting wrong).
Each panel's ``data.url`` goes through our reproduction of Kibana's translation
(``kibana_vega``) with a fixed time picker range, is posted to ``_search``, and the rows at
``format.property`` must hold the numbers worked out by hand from the documents — including
what the time range and the dashboard's filter bar must exclude.
"""

from __future__ import annotations

import fnmatch
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers
from kibana_vega import (
    KibanaContext,
    check_vega_lite_fields,
    dashboard_query,
    data_sources,
    leftover_placeholders,
    resolve_property,
    translate_url,
    vega_specs,
)
from schema_names import SCHEMA, retired_names_in

from pipeline.es import installer, names
from pipeline.es.cluster import detect

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
WINDOW = KibanaContext(T0, T0 + 2 * D)  # the time picker: two days from T0
HOST = "api.example.test"
ECS_VERSION = "9.2.0"


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


@dataclass(frozen=True)
class Check:
    at: datetime
    resolver: str
    ip: str | None = None
    error: str | None = None  # error.type; None = success
    domain: str | None = None
    tcp_us: int | None = None
    tls_us: int | None = None


RESOLVER_IPS = {"quad9": "9.9.9.9", "cloudflare": "1.1.1.1", "google": "8.8.8.8"}

CHECKS = [
    Check(T0, "quad9", "192.0.2.10", domain="a1.edge.example", tcp_us=10_000, tls_us=20_000),
    Check(T0, "quad9", "192.0.2.11", domain="a2.edge.example", tcp_us=12_000, tls_us=24_000),
    Check(T0 + H, "quad9", "192.0.2.10", domain="a1.edge.example", tcp_us=11_000, tls_us=22_000),
    Check(T0 + H, "quad9", "198.51.100.7", error="tls.handshake", tcp_us=15_000),  # no PTR
    Check(T0, "cloudflare", "192.0.2.10", domain="a1.edge.example", tcp_us=9_000, tls_us=18_000),
    Check(T0 + H, "cloudflare", "192.0.2.10", domain="a1.edge.example", tcp_us=9_500,
          tls_us=19_000),
    Check(T0 + 2 * H, "cloudflare", error="dns.timeout"),
    Check(T0, "google", "203.0.113.5", domain="b1.edge.example", tcp_us=30_000, tls_us=60_000),
    Check(T0, "google", "203.0.113.6", error="tcp.timeout", domain="b2.edge.example"),
    Check(T0 + 2 * H, "google", error="dns.servfail"),
    Check(T0 + 2 * H, "google", error="dns.servfail"),
    # outside the time picker's range: must not count anywhere
    Check(T0 - D, "quad9", "192.0.2.99", domain="old.edge.example", tcp_us=1, tls_us=1),
    Check(T0 + 3 * D, "google", error="dns.nxdomain"),
]


@dataclass(frozen=True)
class Run:
    resolver: str
    ip: str
    start: datetime
    last_seen: datetime
    end: datetime | None = None
    domain: str | None = None

    @property
    def duration_s(self) -> int:
        return int(((self.end or self.last_seen) - self.start).total_seconds())


RUNS = [
    # overlap the picked range [T0, T0 + 2d]
    Run("quad9", "192.0.2.10", T0 - 2 * D, T0 + H, domain="a1.edge.example"),  # open, 2d 1h
    Run("quad9", "192.0.2.11", T0, T0, end=T0 + H, domain="a2.edge.example"),  # 1 h
    Run("quad9", "198.51.100.7", T0 + H, T0 + H),  # open, 0 s
    Run("cloudflare", "192.0.2.10", T0, T0 + H, domain="a1.edge.example"),  # open, 1 h
    Run("google", "203.0.113.5", T0, T0, end=T0 + timedelta(minutes=30)),  # 30 min
    # started 20 days before the range and still answered inside it: counts (overlap)
    Run("google", "192.0.2.10", T0 - 20 * D, T0 + 10 * H, end=T0 + 11 * H,
        domain="a1.edge.example"),  # 20 d 11 h
    # do not overlap the range
    Run("google", "203.0.113.6", T0 - 10 * D, T0 - 9 * D, end=T0 - 9 * D + H),
    Run("google", "192.0.2.10", T0 + 3 * D, T0 + 3 * D),
]


def prefix24(ip: str) -> str:
    return ".".join(ip.split(".")[:3]) + ".0/24"


def check_doc(c: Check) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": iso(c.at),
        "event.kind": "event",
        "event.dataset": "edgewatch.check",
        "event.outcome": "failure" if c.error else "success",
        "event.duration": 1_000_000,
        "event.category": ["network"],
        "event.type": ["connection"] if c.ip is not None else ["info"],
        "ecs.version": ECS_VERSION,
        "edgewatch.schema": SCHEMA,
        "edgewatch.check.id": f"chk-{c.at:%Y%m%d%H%M}",
        "edgewatch.cycle.id": f"cyc-{c.at:%Y%m%d%H%M}",
        "observer.name": "probe-1",
        "dns.question.name": HOST,
        "dns.question.type": "A",
        "edgewatch.resolver.name": c.resolver,
        "edgewatch.resolver.ip": RESOLVER_IPS[c.resolver],
        "edgewatch.resolver.transport": "udp",
    }
    if c.ip is not None:
        doc.update({
            "dns.type": "answer",
            "dns.response_code": "NOERROR",
            "dns.resolved_ip": [c.ip],
            "edgewatch.dns.answer_count": 1,
            "edgewatch.dns.ttl": 300,
            "destination.ip": c.ip,
            "destination.port": 443,
            "edgewatch.destination.prefix24": prefix24(c.ip),
            "edgewatch.run.id": f"run-{c.resolver}-{c.ip}",
            "edgewatch.run.seq": 1,
            "edgewatch.run.start": iso(c.at),
        })
        if c.domain:
            doc["destination.domain"] = c.domain
        if c.tcp_us is not None:
            doc.update({"edgewatch.tcp.established": True, "tcp.rtt.connect.us": c.tcp_us})
        if c.tls_us is not None:
            doc.update({"tls.established": True, "edgewatch.tls.verified": True,
                        "tls.rtt.handshake.us": c.tls_us, "tls.version": "1.3",
                        "tls.version_protocol": "tls"})
    elif c.error == "dns.servfail":
        doc["dns.response_code"] = "SERVFAIL"
    if c.error:
        doc.update({"error.type": c.error, "error.message": f"simulated {c.error}"})
    return doc


def run_doc(r: Run) -> dict[str, Any]:
    run_id = hashlib.sha1(f"{r.resolver}|{r.ip}|{r.start}".encode()).hexdigest()[:20]
    doc: dict[str, Any] = {
        "@timestamp": iso(r.start),
        "event.kind": "state",
        "event.dataset": "edgewatch.run",
        "ecs.version": ECS_VERSION,
        "edgewatch.schema": SCHEMA,
        "edgewatch.run.version": 1,
        "observer.name": "probe-1",
        "dns.question.name": HOST,
        "dns.question.type": "A",
        "edgewatch.resolver.name": r.resolver,
        "edgewatch.resolver.ip": RESOLVER_IPS[r.resolver],
        "destination.ip": r.ip,
        "edgewatch.destination.prefix24": prefix24(r.ip),
        "edgewatch.run.id": run_id,
        "edgewatch.run.start": iso(r.start),
        "edgewatch.run.last_seen": iso(r.last_seen),
        "edgewatch.run.open": r.end is None,
        "edgewatch.run.checks": 1,
        "edgewatch.run.gaps": 0,
        "edgewatch.run.duration.s": r.duration_s,
        "edgewatch.run.observed.s": int((r.last_seen - r.start).total_seconds()),
    }
    if r.end is not None:
        doc["edgewatch.run.end"] = iso(r.end)
    if r.domain:
        doc["destination.domain"] = r.domain
    return doc


@dataclass(frozen=True)
class Indices:
    checks: str
    runs: str


def load_documents(es: Elasticsearch, made: Indices) -> None:
    """CHECKS and RUNS into the installed data stream and runs index; every one must go in."""
    actions = [{"_op_type": "create", "_index": made.checks, "_source": check_doc(c)}
               for c in CHECKS]
    actions += [{"_op_type": "index", "_index": made.runs,
                 "_id": run_doc(r)["edgewatch.run.id"], "_source": run_doc(r)} for r in RUNS]
    ok, errors = helpers.bulk(es, actions, raise_on_error=False, refresh="true")
    assert not errors and ok == len(actions), errors


@pytest.fixture(scope="module")
def indices(es: Elasticsearch, es_url: str) -> Iterator[Indices]:
    """The check data stream and runs index of a fresh namespace, made by edgewatch's setup."""
    ns = f"kib{uuid.uuid4().hex[:8]}"
    caps = detect(es, es_url)
    outcomes = installer.install(es, ns, caps)
    assert not [o for o in outcomes if o.action == installer.CONFLICT], outcomes
    made = Indices(names.check_data_stream(ns), names.runs_index(ns))
    load_documents(es, made)
    try:
        yield made
    finally:
        es.options(ignore_status=404).indices.delete(index=made.runs)
        # A data stream is deleted through its own API (absent on the devstack node, whose data
        # folder is thrown away after the session anyway).
        es.options(ignore_status=(400, 404, 405)).indices.delete_data_stream(name=made.checks)


def test_the_documents_are_schema_2() -> None:
    """Every test document spells only schema-2 names (the strict mapping would refuse an
    unknown name, but this says which one)."""
    docs = [check_doc(c) for c in CHECKS] + [run_doc(r) for r in RUNS]
    assert all(d["edgewatch.schema"] == SCHEMA for d in docs)
    assert [sorted(retired_names_in(d)) for d in docs if retired_names_in(d)] == []


def run_panel(es: Elasticsearch, objects: list[dict[str, Any]], indices: Indices, vis_id: str,
              ctx: KibanaContext = WINDOW) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Translate the panel's data.url as Kibana does, search, return (rows, search body)."""
    spec = vega_specs(objects)[vis_id]
    (source,) = data_sources(spec)
    search = translate_url(source["url"], ctx)
    assert leftover_placeholders(search.body) == [], search.body
    # The spec searches every namespace (index pattern); the test searches its own namespace.
    target = indices.checks if fnmatch.fnmatch(indices.checks, search.index) else indices.runs
    assert fnmatch.fnmatch(target, search.index), (target, search.index)
    reply = es.search(index=target, body=search.body, ignore_unavailable=True).body
    assert reply["_shards"]["failed"] == 0, reply["_shards"]
    rows = resolve_property(reply, source["format"]["property"])
    assert isinstance(rows, list)
    return rows, search.body


def by_key(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r.get("key_as_string", r["key"])): r for r in rows}


def test_unique_ips_per_resolver(es: Elasticsearch, objects: list[dict[str, Any]],
                                 indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-unique-ips-per-resolver")
    assert [r["key"] for r in rows] == ["quad9", "google", "cloudflare"]  # by distinct IPs
    got = {r["key"]: (r["unique_ips"]["value"], r["unique_prefix24"]["value"], r["doc_count"])
           for r in rows}
    assert got == {"quad9": (3, 2, 4), "google": (2, 1, 4), "cloudflare": (1, 1, 3)}


def test_unique_ips_over_time(es: Elasticsearch, objects: list[dict[str, Any]],
                              indices: Indices) -> None:
    rows, body = run_panel(es, objects, indices, "edgewatch-unique-ips-over-time")
    histogram = body["aggs"]["over_time"]["date_histogram"]
    assert histogram["calendar_interval"] == "1h"  # 2 days / 50 buckets, rounded as Kibana does
    assert histogram["extended_bounds"] == {"min": ms(T0), "max": ms(T0 + 2 * D)}
    assert len(rows) == 49  # every hour of the range, empty ones included
    assert rows[0]["key"] == ms(T0)
    ips = [r["unique_ips"]["value"] for r in rows]
    docs = [r["doc_count"] for r in rows]
    assert ips[:3] == [4, 2, 0] and not any(ips[3:])
    assert docs[:3] == [5, 3, 3] and not any(docs[3:])
    # Hours 3.. hold no check: Elasticsearch says 0 addresses there, hour 2 (only failed DNS
    # checks) says 0 too. The chart must tell them apart: 0 where checks ran, a gap elsewhere.
    spec = vega_specs(objects)["edgewatch-unique-ips-over-time"]
    (ips_from,) = [t["calculate"] for t in spec["transform"] if t.get("as") == "ips"]
    assert ips_from == "datum.doc_count > 0 ? datum.unique_ips.value : null"
    assert spec["mark"]["type"] == "line"
    assert spec["mark"]["invalid"] == "break-paths-show-domains"  # null breaks the line


def test_new_ips_over_time(es: Elasticsearch, objects: list[dict[str, Any]],
                           indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-new-ips-over-time")
    first_seen = {r["key"]: r["first_seen"]["value"] for r in rows}
    assert first_seen == {"192.0.2.10": ms(T0), "192.0.2.11": ms(T0), "203.0.113.5": ms(T0),
                          "203.0.113.6": ms(T0), "198.51.100.7": ms(T0 + H)}


def test_run_length_distribution(es: Elasticsearch, objects: list[dict[str, Any]],
                                 indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-run-length-distribution")
    states = by_key(rows)
    assert set(states) == {"true", "false"}
    hist = {state: {b["key"]: b["doc_count"] for b in row["lengths"]["buckets"] if b["doc_count"]}
            for state, row in states.items()}
    assert hist["true"] == {"< 15 min": 1, "1 – 6 h": 1, "1 – 3 d": 1}
    # the 20-day run started long before the range: kept because it overlaps it
    assert hist["false"] == {"15 min – 1 h": 1, "1 – 6 h": 1, "14 – 30 d": 1}
    bins = [b["key"] for b in states["true"]["lengths"]["buckets"]]
    assert bins[0] == "< 15 min" and bins[-1] == "≥ 30 d" and len(bins) == 9


def test_failures_by_resolver_and_kind(es: Elasticsearch, objects: list[dict[str, Any]],
                                       indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-failures-by-resolver-kind")
    got = {r["key"]: {k["key"]: k["doc_count"] for k in r["kinds"]["buckets"]} for r in rows}
    # dns.nxdomain is after the range; successes are not counted
    assert got == {"google": {"dns.servfail": 2, "tcp.timeout": 1},
                   "quad9": {"tls.handshake": 1}, "cloudflare": {"dns.timeout": 1}}
    assert rows[0]["key"] == "google"


def test_most_stable_ips(es: Elasticsearch, objects: list[dict[str, Any]],
                         indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-most-stable-ips")
    assert [r["key"] for r in rows] == ["192.0.2.10", "192.0.2.11", "203.0.113.5",
                                        "198.51.100.7"]
    top = rows[0]
    # quad9 (2 d 1 h, open) + cloudflare (1 h, open) + google (20 d 11 h); the google run of
    # 3 days after the range does not overlap it
    assert top["total_s"]["value"] == (2 * 86400 + 3600) + 3600 + (20 * 86400 + 11 * 3600)
    assert top["doc_count"] == 3
    assert top["longest_s"]["value"] == 20 * 86400 + 11 * 3600
    assert top["resolvers"]["value"] == 3
    assert top["open_runs"]["doc_count"] == 2
    assert [b["key"] for b in top["domain"]["buckets"]] == ["a1.edge.example"]
    assert [r["total_s"]["value"] for r in rows[1:]] == [3600, 1800, 0]


def test_edge_hostnames(es: Elasticsearch, objects: list[dict[str, Any]],
                        indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-edge-hostnames")
    got = {r["key"]: (r["doc_count"], r["unique_ips"]["value"]) for r in rows}
    assert got == {"a1.edge.example": (4, 1), "a2.edge.example": (1, 1),
                   "b1.edge.example": (1, 1), "b2.edge.example": (1, 1), "(no PTR)": (1, 1)}


def _percentiles(agg: dict[str, Any]) -> dict[float, float | None]:
    return {p["key"]: p["value"] for p in agg["values"]}


def test_timings_over_time(es: Elasticsearch, objects: list[dict[str, Any]],
                           indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-timings-over-time")
    assert len(rows) == 49
    h0, h1, h2 = rows[0], rows[1], rows[2]
    tls0 = _percentiles(h0["tls_handshake"])
    assert set(tls0) == {50.0, 95.0}
    # hour 0 handshakes: 18, 20, 24, 60 ms; percentiles stay inside and in order
    assert 18_000 <= tls0[50.0] <= tls0[95.0] <= 60_000
    tcp1 = _percentiles(h1["tcp_connect"])  # 9.5, 11, 15 ms (the failed TLS still connected)
    assert 9_500 <= tcp1[50.0] <= tcp1[95.0] <= 15_000
    # hour 2 has only DNS failures: no timings, so the chart's isValid() filter drops it
    assert _percentiles(h2["tls_handshake"]) == {50.0: None, 95.0: None}


def test_handshake_per_resolver(es: Elasticsearch, objects: list[dict[str, Any]],
                                indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-handshake-per-resolver")
    got = {r["key"]: _percentiles(r["tls_handshake"]) for r in rows}
    assert got["google"] == {50.0: 60_000.0, 95.0: 60_000.0, 99.0: 60_000.0}  # one handshake
    assert 20_000 <= got["quad9"][50.0] <= got["quad9"][99.0] <= 24_000
    assert 18_000 <= got["cloudflare"][50.0] <= got["cloudflare"][99.0] <= 19_000


ALL_PANELS = [
    "edgewatch-unique-ips-per-resolver", "edgewatch-unique-ips-over-time",
    "edgewatch-new-ips-over-time", "edgewatch-run-length-distribution",
    "edgewatch-failures-by-resolver-kind", "edgewatch-most-stable-ips",
    "edgewatch-edge-hostnames", "edgewatch-timings-over-time",
    "edgewatch-handshake-per-resolver",
]


def test_every_vega_panel_is_covered(objects: list[dict[str, Any]]) -> None:
    assert sorted(vega_specs(objects)) == sorted(ALL_PANELS)


QUAD9_ONLY = KibanaContext(
    T0, T0 + 2 * D, dashboard_query([{"match_phrase": {"edgewatch.resolver.name": "quad9"}}]))


def test_filter_bar_reaches_context_panels(es: Elasticsearch, objects: list[dict[str, Any]],
                                           indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-unique-ips-per-resolver", QUAD9_ONLY)
    assert [(r["key"], r["unique_ips"]["value"]) for r in rows] == [("quad9", 3)]


def test_filter_bar_reaches_query_panels(es: Elasticsearch, objects: list[dict[str, Any]],
                                         indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-failures-by-resolver-kind", QUAD9_ONLY)
    assert [(r["key"], r["doc_count"]) for r in rows] == [("quad9", 1)]
    rows, _ = run_panel(es, objects, indices, "edgewatch-most-stable-ips", QUAD9_ONLY)
    assert {r["key"]: r["total_s"]["value"] for r in rows} == {
        "192.0.2.10": 2 * 86400 + 3600, "192.0.2.11": 3600, "198.51.100.7": 0}


EXCLUDE_ALL = KibanaContext(T0, T0 + 2 * D, dashboard_query(negated=[{"match_all": {}}]))


@pytest.mark.parametrize("vis_id", ALL_PANELS)
def test_every_panel_honours_the_dashboard_filters(
        es: Elasticsearch, objects: list[dict[str, Any]], indices: Indices, vis_id: str) -> None:
    """A negated match-all filter must empty every panel: none ignores the filter bar."""
    rows, _ = run_panel(es, objects, indices, vis_id, EXCLUDE_ALL)
    assert sum(r["doc_count"] for r in rows) == 0


@pytest.mark.parametrize("vis_id", ALL_PANELS)
def test_every_panel_honours_the_time_picker(
        es: Elasticsearch, objects: list[dict[str, Any]], indices: Indices, vis_id: str) -> None:
    """A range a year later holds no check and overlaps no run."""
    later = KibanaContext(T0 + 365 * D, T0 + 367 * D)
    rows, _ = run_panel(es, objects, indices, vis_id, later)
    assert sum(r["doc_count"] for r in rows) == 0


@pytest.mark.parametrize("vis_id", ALL_PANELS)
def test_chart_reads_fields_the_reply_has(
        es: Elasticsearch, objects: list[dict[str, Any]], indices: Indices, vis_id: str) -> None:
    """Every ``field`` and ``datum.x`` the Vega-Lite spec reads exists in the rows it gets."""
    rows, _ = run_panel(es, objects, indices, vis_id)
    assert check_vega_lite_fields(vega_specs(objects)[vis_id], rows) == []
