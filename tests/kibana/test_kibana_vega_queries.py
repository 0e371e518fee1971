"""Every Vega panel's query, as Kibana would send it, run on a real Elasticsearch node.

The check documents and run summaries (``panel_documents``, IPv4 and IPv6 mixed) follow schema 2
of docs/DOCUMENTS.md and go into a data stream and an index created by edgewatch's own templates
(``pipeline.es.installer``: strict mappings, so a document that strays from the schema fails
here rather than charting wrong).
Each panel's ``data.url`` goes through our reproduction of Kibana's translation
(``kibana_vega``) with a fixed time picker range, is posted to ``_search``, and the rows at
``format.property`` must hold the numbers worked out by hand from the documents — including
what the time range and the dashboard's filter bar must exclude.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from kibana_vega import KibanaContext, check_vega_lite_fields, dashboard_query, vega_specs
from panel_documents import (
    ALL_PANELS,
    CHECKS,
    PTR_A,
    PTR_B,
    RUNS,
    T0,
    V6_A,
    V6_B,
    V6_C,
    V6_D,
    D,
    H,
    Indices,
    by_key,
    check_doc,
    installed_indices,
    load_documents,
    ms,
    percentiles,
    run_doc,
    run_panel,
)
from schema_names import SCHEMA, retired_names_in

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def indices(es: Elasticsearch, es_url: str) -> Iterator[Indices]:
    """The test documents in a fresh namespace's data stream and runs index."""
    with installed_indices(es, es_url) as made:
        load_documents(es, made)
        yield made


def test_the_documents_are_schema_2() -> None:
    """Every test document spells only schema-2 names (the strict mapping would refuse an
    unknown name, but this says which one)."""
    docs = [check_doc(c) for c in CHECKS] + [run_doc(r) for r in RUNS]
    assert all(d["edgewatch.schema"] == SCHEMA for d in docs)
    assert [sorted(retired_names_in(d)) for d in docs if retired_names_in(d)] == []


def test_the_documents_are_dual_stack() -> None:
    """Both families in checks and runs; every IPv6 document carries its /48 and AAAA."""
    docs = [check_doc(c) for c in CHECKS] + [run_doc(r) for r in RUNS]
    v6 = [d for d in docs if ":" in d.get("destination.ip", "")]
    assert {d["event.dataset"] for d in v6} == {"edgewatch.check", "edgewatch.run"}
    assert {d["dns.question.type"] for d in v6} == {"AAAA"}
    assert {d["edgewatch.destination.prefix24"] for d in v6} == {
        "fd00:60::/48", "fd00:61::/48", "fd00:62::/48"}


def test_unique_ips_per_resolver(es: Elasticsearch, objects: list[dict[str, Any]],
                                 indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-unique-ips-per-resolver")
    assert [r["key"] for r in rows] == ["quad9", "google", "cloudflare"]  # by distinct IPs
    got = {r["key"]: (r["unique_ips"]["value"], r["unique_prefix24"]["value"], r["doc_count"])
           for r in rows}
    # (addresses, /24s + /48s, documents): quad9 192.0.2.10/.11, 198.51.100.7 and fd00:60::10,
    # fd00:60:0:1::11 (one /48), fd00:61::10; google 203.0.113.5/.6 (one /24), fd00:60::10,
    # fd00:62::10; cloudflare 192.0.2.10, fd00:60:0:1::11
    assert got == {"quad9": (6, 4, 8), "google": (4, 3, 6), "cloudflare": (2, 2, 5)}
    families = {r["key"]: {f["key"]: (f["unique_ips"]["value"], f["unique_prefix24"]["value"],
                                      f["doc_count"]) for f in r["families"]["buckets"]}
                for r in rows}
    assert families == {"quad9": {"A": (3, 2, 4), "AAAA": (3, 2, 4)},
                        "google": {"A": (2, 1, 4), "AAAA": (2, 2, 2)},
                        "cloudflare": {"A": (1, 1, 3), "AAAA": (1, 1, 2)}}
    # the stacked bar is the total: the two families' address sets are disjoint
    assert all(sum(f[0] for f in families[k].values()) == got[k][0] for k in got)


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
    # hour 0: 4 IPv4 + fd00:60::10, fd00:60:0:1::11; hour 1: 192.0.2.10, 198.51.100.7 + four
    # IPv6; hour 2: DNS failures only (three A, one AAAA)
    assert ips[:3] == [6, 6, 0] and not any(ips[3:])
    assert docs[:3] == [8, 7, 4] and not any(docs[3:])
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
    # fd00:60::10 was seen the day before and is seen again after the range: neither counts
    assert first_seen == {"192.0.2.10": ms(T0), "192.0.2.11": ms(T0), "203.0.113.5": ms(T0),
                          "203.0.113.6": ms(T0), "198.51.100.7": ms(T0 + H),
                          V6_A: ms(T0), V6_B: ms(T0), V6_C: ms(T0 + H), V6_D: ms(T0 + H)}


def test_run_length_distribution(es: Elasticsearch, objects: list[dict[str, Any]],
                                 indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-run-length-distribution")
    states = by_key(rows)
    assert set(states) == {"true", "false"}
    hist = {state: {b["key"]: b["doc_count"] for b in row["lengths"]["buckets"] if b["doc_count"]}
            for state, row in states.items()}
    # open: 0 s and fd00:61::10's 10 min; 1 h; fd00:60:0:1::11's 11 h; 2 d 1 h; and
    # fd00:60::10's 35 d 1 h at quad9, started long before the range
    assert hist["true"] == {"< 15 min": 2, "1 – 6 h": 1, "6 – 24 h": 1, "1 – 3 d": 1,
                            "≥ 30 d": 1}
    # ended: 30, 20 (fd00:60::10) and 40 min (fd00:62::10); two of 1 h; the 20-day run that
    # started long before the range, kept because it overlaps it
    assert hist["false"] == {"15 min – 1 h": 3, "1 – 6 h": 2, "14 – 30 d": 1}
    bins = [b["key"] for b in states["true"]["lengths"]["buckets"]]
    assert bins[0] == "< 15 min" and bins[-1] == "≥ 30 d" and len(bins) == 9


def test_failures_by_resolver_and_kind(es: Elasticsearch, objects: list[dict[str, Any]],
                                       indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-failures-by-resolver-kind")
    got = {r["key"]: {k["key"]: k["doc_count"] for k in r["kinds"]["buckets"]} for r in rows}
    # dns.nxdomain is after the range; successes are not counted. IPv6: fd00:61::10 timed out
    # at quad9, fd00:62::10 failed TLS at google, cloudflare's AAAA query timed out too
    assert got == {"google": {"dns.servfail": 2, "tcp.timeout": 1, "tls.handshake": 1},
                   "quad9": {"tls.handshake": 1, "tcp.timeout": 1},
                   "cloudflare": {"dns.timeout": 2}}
    assert rows[0]["key"] == "google"


def test_most_stable_ips(es: Elasticsearch, objects: list[dict[str, Any]],
                         indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-most-stable-ips")
    assert [r["key"] for r in rows] == [V6_A, "192.0.2.10", V6_B, "192.0.2.11", V6_D,
                                        "203.0.113.5", V6_C, "198.51.100.7"]
    v6, v4 = rows[0], rows[1]
    # fd00:60::10: quad9 35 d 1 h (open) + google 20 min; not the google run after the range
    assert v6["total_s"]["value"] == (35 * 86400 + 3600) + 1200
    assert (v6["doc_count"], v6["resolvers"]["value"], v6["open_runs"]["doc_count"]) == (2, 2, 1)
    assert v6["longest_s"]["value"] == 35 * 86400 + 3600
    assert [b["key"] for b in v6["domain"]["buckets"]] == [PTR_A]
    # quad9 (2 d 1 h, open) + cloudflare (1 h, open) + google (20 d 11 h); the google run of
    # 3 days after the range does not overlap it
    assert v4["total_s"]["value"] == (2 * 86400 + 3600) + 3600 + (20 * 86400 + 11 * 3600)
    assert v4["doc_count"] == 3
    assert v4["longest_s"]["value"] == 20 * 86400 + 11 * 3600
    assert v4["resolvers"]["value"] == 3
    assert v4["open_runs"]["doc_count"] == 2
    assert [b["key"] for b in v4["domain"]["buckets"]] == ["a1.edge.example"]
    # fd00:60:0:1::11: quad9 1 h + cloudflare 11 h; then 1 h, 40 min, 30 min, 10 min, 0 s
    assert [r["total_s"]["value"] for r in rows[2:]] == [12 * 3600, 3600, 2400, 1800, 600, 0]


def test_edge_hostnames(es: Elasticsearch, objects: list[dict[str, Any]],
                        indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-edge-hostnames")
    got = {r["key"]: (r["doc_count"], r["unique_ips"]["value"]) for r in rows}
    # b1 is a dual-stack edge host (203.0.113.5 and fd00:62::10); no PTR: 198.51.100.7 and
    # fd00:61::10
    assert got == {"a1.edge.example": (4, 1), "a2.edge.example": (1, 1),
                   "b1.edge.example": (2, 2), "b2.edge.example": (1, 1), "(no PTR)": (2, 2),
                   PTR_A: (3, 1), PTR_B: (2, 1)}


def test_timings_over_time(es: Elasticsearch, objects: list[dict[str, Any]],
                           indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-timings-over-time")
    assert len(rows) == 49
    h0, h1, h2 = rows[0], rows[1], rows[2]
    tls0 = percentiles(h0["tls_handshake"])
    assert set(tls0) == {50.0, 95.0}
    # hour 0 handshakes: 18, 20, 24, 60 ms (IPv4) and 16, 28, 62 ms (IPv6); percentiles stay
    # inside and in order
    assert 16_000 <= tls0[50.0] <= tls0[95.0] <= 62_000
    # hour 1 connects: 9.5, 11, 15 ms (IPv4; the failed TLS still connected) and 12.5, 13,
    # 40 ms (IPv6): only the IPv6 40 ms lies above 15 ms, so a p95 above it counts IPv6
    tcp1 = percentiles(h1["tcp_connect"])
    assert 9_500 <= tcp1[50.0] <= tcp1[95.0] <= 40_000
    assert tcp1[95.0] > 15_000
    # hour 2 has only DNS failures: no timings, so the chart's isValid() filter drops it
    assert percentiles(h2["tls_handshake"]) == {50.0: None, 95.0: None}


def test_handshake_per_resolver(es: Elasticsearch, objects: list[dict[str, Any]],
                                indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-handshake-per-resolver")
    got = {r["key"]: percentiles(r["tls_handshake"]) for r in rows}
    # google: 60 ms (203.0.113.5) and 62 ms (fd00:60::10); fd00:62::10 failed TLS
    assert 60_000 <= got["google"][50.0] <= got["google"][99.0] <= 62_000
    assert got["google"][99.0] > 60_000
    # quad9: 20, 22, 24 ms and 25, 26, 28 ms; cloudflare: 18, 19 ms and 16 ms
    assert 20_000 <= got["quad9"][50.0] <= got["quad9"][99.0] <= 28_000
    assert got["quad9"][99.0] > 24_000
    assert 16_000 <= got["cloudflare"][50.0] <= got["cloudflare"][99.0] <= 19_000


def test_run_timeline_clips_runs_to_the_range(es: Elasticsearch, objects: list[dict[str, Any]],
                                              indices: Indices) -> None:
    """The picked range comes back with every run, so a 35-day run is drawn from T0 on."""
    rows, _ = run_panel(es, objects, indices, "edgewatch-run-timeline")
    assert len(rows) == 12  # the runs that overlap the range (see test_run_length_distribution)
    assert {(r["picked"]["buckets"][0]["from"], r["picked"]["buckets"][0]["to"])
            for r in rows} == {(ms(T0), ms(T0 + 2 * D))}
    (old,) = [r for r in rows if r["start"]["value"] == ms(T0 - 35 * D)]
    assert old["run"]["hits"]["hits"][0]["fields"]["destination.ip"] == [V6_A]
    calc = {t["as"]: t["calculate"] for t in vega_specs(objects)["edgewatch-run-timeline"]
            ["transform"] if "calculate" in t}
    assert calc["range_from"] == "datum.picked.buckets[0].from"
    assert calc["bar_from"] == "max(datum.run_start, datum.range_from)"
    assert calc["bar_until"] == "min(datum.run_until, datum.range_to)"


def test_every_vega_panel_is_covered(objects: list[dict[str, Any]]) -> None:
    assert sorted(vega_specs(objects)) == sorted(ALL_PANELS)


QUAD9_ONLY = KibanaContext(
    T0, T0 + 2 * D, dashboard_query([{"match_phrase": {"edgewatch.resolver.name": "quad9"}}]))


def test_filter_bar_reaches_context_panels(es: Elasticsearch, objects: list[dict[str, Any]],
                                           indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-unique-ips-per-resolver", QUAD9_ONLY)
    assert [(r["key"], r["unique_ips"]["value"]) for r in rows] == [("quad9", 6)]


def test_filter_bar_reaches_query_panels(es: Elasticsearch, objects: list[dict[str, Any]],
                                         indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-failures-by-resolver-kind", QUAD9_ONLY)
    assert [(r["key"], r["doc_count"]) for r in rows] == [("quad9", 2)]
    rows, _ = run_panel(es, objects, indices, "edgewatch-most-stable-ips", QUAD9_ONLY)
    assert {r["key"]: r["total_s"]["value"] for r in rows} == {
        "192.0.2.10": 2 * 86400 + 3600, "192.0.2.11": 3600, "198.51.100.7": 0,
        V6_A: 35 * 86400 + 3600, V6_B: 3600, V6_C: 600}


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
