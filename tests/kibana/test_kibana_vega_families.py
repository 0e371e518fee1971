"""One address family at a time: the filter bar on ``dns.question.type`` narrows every panel.

Check documents and run summaries both carry ``dns.question.type`` (A answers are IPv4, AAAA
IPv6), so a dashboard filter ``dns.question.type: AAAA`` must turn every panel, the run panels
included, into an IPv6-only view, and ``A`` must give back exactly the IPv4-only figures. The
documents are the mixed ones of ``panel_documents``; the figures are worked out from them by
hand, one family each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from kibana_vega import KibanaContext, dashboard_query, vega_specs
from panel_documents import (
    ALL_PANELS,
    LAB_CHECKED_PANELS,
    PTR_A,
    PTR_B,
    T0,
    V6_A,
    V6_B,
    V6_C,
    V6_D,
    D,
    H,
    Indices,
    by_key,
    installed_indices,
    load_documents,
    ms,
    percentiles,
    run_panel,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def indices(es: Elasticsearch, es_url: str) -> Iterator[Indices]:
    with installed_indices(es, es_url, prefix="fam") as made:
        load_documents(es, made)
        yield made


def only(qtype: str) -> KibanaContext:
    """The dashboard over the test range with a filter pill on the question type."""
    return KibanaContext(T0, T0 + 2 * D,
                         dashboard_query([{"match_phrase": {"dns.question.type": qtype}}]))


Rows = list[dict[str, Any]]


def per_resolver(rows: Rows) -> Any:
    return [(r["key"], r["unique_ips"]["value"], r["unique_prefix24"]["value"], r["doc_count"],
             sorted(f["key"] for f in r["families"]["buckets"])) for r in rows]


def over_time(rows: Rows) -> Any:
    return [(r["key"], r["unique_ips"]["value"], r["doc_count"]) for r in rows if r["doc_count"]]


def first_seen(rows: Rows) -> Any:
    return {r["key"]: r["first_seen"]["value"] for r in rows}


def run_lengths(rows: Rows) -> Any:
    return {state: {b["key"]: b["doc_count"] for b in row["lengths"]["buckets"] if b["doc_count"]}
            for state, row in by_key(rows).items()}


def failures(rows: Rows) -> Any:
    return {r["key"]: {k["key"]: k["doc_count"] for k in r["kinds"]["buckets"]} for r in rows}


def most_stable(rows: Rows) -> Any:
    return [(r["key"], r["total_s"]["value"], r["doc_count"], r["open_runs"]["doc_count"])
            for r in rows]


def hostnames(rows: Rows) -> Any:
    return {r["key"]: (r["doc_count"], r["unique_ips"]["value"]) for r in rows}


SUMMARIES: dict[str, Callable[[Rows], Any]] = {
    "edgewatch-unique-ips-per-resolver": per_resolver,
    "edgewatch-unique-ips-over-time": over_time,
    "edgewatch-new-ips-over-time": first_seen,
    "edgewatch-run-length-distribution": run_lengths,
    "edgewatch-failures-by-resolver-kind": failures,
    "edgewatch-most-stable-ips": most_stable,
    "edgewatch-edge-hostnames": hostnames,
}

HOUR_S, DAY_S = 3600, 86400

EXPECTED: dict[str, dict[str, Any]] = {
    "A": {  # the IPv4 documents alone
        "edgewatch-unique-ips-per-resolver": [("quad9", 3, 2, 4, ["A"]),
                                              ("google", 2, 1, 4, ["A"]),
                                              ("cloudflare", 1, 1, 3, ["A"])],
        "edgewatch-unique-ips-over-time": [(ms(T0), 4, 5), (ms(T0 + H), 2, 3),
                                           (ms(T0 + 2 * H), 0, 3)],
        "edgewatch-new-ips-over-time": {"192.0.2.10": ms(T0), "192.0.2.11": ms(T0),
                                        "203.0.113.5": ms(T0), "203.0.113.6": ms(T0),
                                        "198.51.100.7": ms(T0 + H)},
        "edgewatch-run-length-distribution": {
            "true": {"< 15 min": 1, "1 – 6 h": 1, "1 – 3 d": 1},
            "false": {"15 min – 1 h": 1, "1 – 6 h": 1, "14 – 30 d": 1}},
        "edgewatch-failures-by-resolver-kind": {
            "google": {"dns.servfail": 2, "tcp.timeout": 1}, "quad9": {"tls.handshake": 1},
            "cloudflare": {"dns.timeout": 1}},
        "edgewatch-most-stable-ips": [
            ("192.0.2.10", (2 * DAY_S + HOUR_S) + HOUR_S + (20 * DAY_S + 11 * HOUR_S), 3, 2),
            ("192.0.2.11", HOUR_S, 1, 0), ("203.0.113.5", 1800, 1, 0),
            ("198.51.100.7", 0, 1, 1)],
        "edgewatch-edge-hostnames": {"a1.edge.example": (4, 1), "a2.edge.example": (1, 1),
                                     "b1.edge.example": (1, 1), "b2.edge.example": (1, 1),
                                     "(no PTR)": (1, 1)},
    },
    "AAAA": {  # the IPv6 documents alone
        # quad9: fd00:60::10 twice, fd00:60:0:1::11 (same /48), fd00:61::10; google:
        # fd00:60::10, fd00:62::10; cloudflare: fd00:60:0:1::11 and a timed-out AAAA query
        "edgewatch-unique-ips-per-resolver": [("quad9", 3, 2, 4, ["AAAA"]),
                                              ("google", 2, 2, 2, ["AAAA"]),
                                              ("cloudflare", 1, 1, 2, ["AAAA"])],
        "edgewatch-unique-ips-over-time": [(ms(T0), 2, 3), (ms(T0 + H), 4, 4),
                                           (ms(T0 + 2 * H), 0, 1)],
        "edgewatch-new-ips-over-time": {V6_A: ms(T0), V6_B: ms(T0), V6_C: ms(T0 + H),
                                        V6_D: ms(T0 + H)},
        "edgewatch-run-length-distribution": {
            "true": {"< 15 min": 1, "6 – 24 h": 1, "≥ 30 d": 1},
            "false": {"15 min – 1 h": 2, "1 – 6 h": 1}},
        "edgewatch-failures-by-resolver-kind": {
            "quad9": {"tcp.timeout": 1}, "google": {"tls.handshake": 1},
            "cloudflare": {"dns.timeout": 1}},
        "edgewatch-most-stable-ips": [
            (V6_A, (35 * DAY_S + HOUR_S) + 1200, 2, 1), (V6_B, HOUR_S + 11 * HOUR_S, 2, 1),
            (V6_D, 2400, 1, 0), (V6_C, 600, 1, 1)],
        "edgewatch-edge-hostnames": {PTR_A: (3, 1), PTR_B: (2, 1), "b1.edge.example": (1, 1),
                                     "(no PTR)": (1, 1)},
    },
}


def test_every_counting_panel_is_summarised() -> None:
    """The two timing panels are checked below (percentiles are estimates, not counts)."""
    timing = {"edgewatch-timings-over-time", "edgewatch-handshake-per-resolver"}
    assert sorted(SUMMARIES) == sorted(set(ALL_PANELS) - timing - set(LAB_CHECKED_PANELS))


@pytest.mark.parametrize("qtype", ["A", "AAAA"])
@pytest.mark.parametrize("vis_id", sorted(SUMMARIES))
def test_one_family_through_the_filter_bar(
        es: Elasticsearch, objects: list[dict[str, Any]], indices: Indices, vis_id: str,
        qtype: str) -> None:
    rows, _ = run_panel(es, objects, indices, vis_id, only(qtype))
    assert SUMMARIES[vis_id](rows) == EXPECTED[qtype][vis_id]


def test_ipv6_timings_alone(es: Elasticsearch, objects: list[dict[str, Any]],
                            indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-timings-over-time", only("AAAA"))
    tls0 = percentiles(rows[0]["tls_handshake"])  # 16, 28, 62 ms
    assert 16_000 <= tls0[50.0] <= tls0[95.0] <= 62_000
    tls1 = percentiles(rows[1]["tls_handshake"])  # 25, 26 ms (fd00:62::10 failed TLS)
    assert 25_000 <= tls1[50.0] <= tls1[95.0] <= 26_000
    tcp1 = percentiles(rows[1]["tcp_connect"])  # 12.5, 13, 40 ms (fd00:61::10 timed out)
    assert 12_500 <= tcp1[50.0] <= tcp1[95.0] <= 40_000
    assert percentiles(rows[2]["tcp_connect"]) == {50.0: None, 95.0: None}


def test_ipv6_handshakes_per_resolver(es: Elasticsearch, objects: list[dict[str, Any]],
                                      indices: Indices) -> None:
    rows, _ = run_panel(es, objects, indices, "edgewatch-handshake-per-resolver", only("AAAA"))
    got = {r["key"]: percentiles(r["tls_handshake"]) for r in rows}
    assert got["google"] == {50.0: 62_000.0, 95.0: 62_000.0, 99.0: 62_000.0}  # one handshake
    assert got["cloudflare"] == {50.0: 16_000.0, 95.0: 16_000.0, 99.0: 16_000.0}
    assert 25_000 <= got["quad9"][50.0] <= got["quad9"][99.0] <= 28_000  # 25, 26, 28 ms


# The longest IPv6 address, and Vega's width estimate where it cannot measure text (0.8 em a
# character at the axis' default 10 px font): a label limit below this cuts an address.
LONGEST_IPV6 = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1234"
LABEL_PX_PER_CHAR = 0.8 * 10


@pytest.mark.parametrize(("vis_id", "label"), [
    ("edgewatch-most-stable-ips", LONGEST_IPV6),
    # a CDN's IPv6 PTR name up to the end of the spelled-out address
    ("edgewatch-edge-hostnames", "g2001-0db8-aaaa-bbbb-cccc-dddd-eeee-1234.deploy.static"),
])
def test_address_labels_are_not_cut(objects: list[dict[str, Any]], vis_id: str,
                                    label: str) -> None:
    spec = vega_specs(objects)[vis_id]
    assert spec["encoding"]["y"]["field"] == "key"
    limit = spec["encoding"]["y"]["axis"]["labelLimit"]
    assert limit >= len(label) * LABEL_PX_PER_CHAR
