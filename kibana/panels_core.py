"""The dashboard's first nine charts: addresses, runs, failures, hostnames and timings.

Each function returns one ``VegaPanel``; ``VEGA_PANELS`` is their order on the dashboard. The
two run charts live in charts_runs.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from charts_runs import most_stable_ips, run_length_distribution
from vega_common import (
    BREAK_AT_NULL,
    CHECKS_INDEX,
    CHECKS_TIME_FIELD,
    COUNT_AXIS,
    FAMILY_LABEL,
    FULL_WIDTH,
    HALF_WIDTH,
    HOSTNAME_AXIS,
    PREFIX24,
    QUESTION_TYPE,
    RESOLVER_NAME,
    VEGA_LITE_SCHEMA,
    VegaPanel,
    bar_rows,
    context_url,
    data,
    in_time_range,
    over_time,
    query_url,
    tooltip,
)

# The most bars a panel draws (its terms size); the panel's height is chosen for that many.
RESOLVER_ROWS = 50
HOSTNAME_ROWS = 30


def unique_ips_per_resolver() -> VegaPanel:
    distinct = {
        "unique_ips": {"cardinality": {"field": "destination.ip"}},
        "unique_prefix24": {"cardinality": {"field": PREFIX24}},
    }
    aggs = {
        "resolvers": {
            "terms": {"field": RESOLVER_NAME, "size": RESOLVER_ROWS,
                      "order": {"unique_ips": "desc"}},
            # Per family as well: an allowlist is one IPv4 set and one IPv6 set, and a /24 and
            # a /48 are different units, so the networks are counted within one family only.
            "aggs": {**distinct,
                     "families": {"terms": {"field": QUESTION_TYPE, "size": 5},
                                  "aggs": distinct}},
        }
    }
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(context_url(CHECKS_INDEX, CHECKS_TIME_FIELD, aggs),
                     "aggregations.resolvers.buckets"),
        "transform": [
            {"calculate": "datum.unique_ips.value", "as": "ips"},
            {"flatten": ["families.buckets"], "as": ["family"]},
            {"calculate": FAMILY_LABEL, "as": "family_label"},
            {"calculate": "datum.family.unique_ips.value", "as": "family_ips"},
            {"calculate": "datum.family.unique_prefix24.value", "as": "family_prefixes"},
            {"calculate": "datum.family.doc_count", "as": "family_checks"},
        ],
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "key", "type": "nominal", "title": "resolver",
                  "sort": {"field": "ips", "op": "max", "order": "descending"}},
            # The families' address sets are disjoint: the stacked bar is the resolver's total.
            "x": {"field": "family_ips", "type": "quantitative", "stack": "zero",
                  "title": "distinct answer addresses", "axis": COUNT_AXIS},
            "color": {"field": "family_label", "type": "nominal", "title": None},
            "tooltip": tooltip(("key", "nominal", "resolver"),
                               ("family_label", "nominal", "family"),
                               ("family_ips", "quantitative", "distinct addresses"),
                               ("family_prefixes", "quantitative", "distinct /24 or /48"),
                               ("family_checks", "quantitative", "check documents"),
                               ("ips", "quantitative", "distinct addresses, both families")),
        },
    }
    return VegaPanel(
        "edgewatch-unique-ips-per-resolver", "edgewatch · distinct addresses per resolver",
        "How many different addresses each resolver handed out in the time range, IPv4 (A) and "
        "IPv6 (AAAA) stacked, and in how many /24 or /48 networks (tooltip). Few addresses "
        "everywhere: an IP allowlist is plausible; many, or different ones per resolver: it "
        "needs every resolver's set, or prefixes.", spec, (HALF_WIDTH, bar_rows(RESOLVER_ROWS)))


def unique_ips_over_time() -> VegaPanel:
    aggs = {"over_time": over_time(CHECKS_TIME_FIELD, {
        "unique_ips": {"cardinality": {"field": "destination.ip"}},
    })}
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(context_url(CHECKS_INDEX, CHECKS_TIME_FIELD, aggs),
                     "aggregations.over_time.buckets"),
        # An interval without check documents (edgewatch not running, or everything filtered
        # out) has a cardinality of 0; null instead, so the line breaks there rather than
        # claiming that no address was handed out. Checks that all failed still draw 0.
        "transform": [{"calculate": "datum.doc_count > 0 ? datum.unique_ips.value : null",
                       "as": "ips"}],
        "mark": {"type": "line", "point": True, "interpolate": "step-after", "tooltip": True,
                 "invalid": BREAK_AT_NULL},
        "encoding": {
            "x": {"field": "key", "type": "temporal", "title": None},
            "y": {"field": "ips", "type": "quantitative",
                  "title": "distinct addresses per interval", "axis": COUNT_AXIS},
            "tooltip": tooltip(("key", "temporal", "interval start"),
                               ("ips", "quantitative", "distinct addresses"),
                               ("doc_count", "quantitative", "check documents")),
        },
    }
    return VegaPanel(
        "edgewatch-unique-ips-over-time", "edgewatch · distinct addresses over time",
        "Distinct answer addresses (all resolvers) per interval. A flat line is a stable pool; "
        "steps are rotations.", spec)


def new_ips_over_time() -> VegaPanel:
    aggs = {
        "ips": {
            "terms": {"field": "destination.ip", "size": 10000},
            "aggs": {"first_seen": {"min": {"field": CHECKS_TIME_FIELD}}},
        }
    }
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(context_url(CHECKS_INDEX, CHECKS_TIME_FIELD, aggs),
                     "aggregations.ips.buckets"),
        "transform": [
            {"calculate": "datum.first_seen.value", "as": "first_seen"},
            {"window": [{"op": "count", "as": "known"}],
             "sort": [{"field": "first_seen", "order": "ascending"}]},
        ],
        "mark": {"type": "line", "interpolate": "step-after", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "first_seen", "type": "temporal", "title": "first seen"},
            "y": {"field": "known", "type": "quantitative",
                  "title": "addresses an allowlist would need", "axis": COUNT_AXIS},
            "tooltip": tooltip(("key", "nominal", "address"),
                               ("first_seen", "temporal", "first seen"),
                               ("known", "quantitative", "addresses known by then")),
        },
    }
    return VegaPanel(
        "edgewatch-new-ips-over-time", "edgewatch · addresses seen so far (allowlist growth)",
        "Cumulative count of distinct addresses by the time each was first seen in the range: "
        "how fast an allowlist built on day one would have gone stale. Still climbing at the "
        "end of the range means new addresses keep appearing.", spec)


def failures_by_resolver_and_kind() -> VegaPanel:
    aggs = {
        "resolvers": {
            "terms": {"field": RESOLVER_NAME, "size": RESOLVER_ROWS},
            "aggs": {"kinds": {"terms": {"field": "error.type", "size": 20,
                                         "missing": "(unclassified)"}}},
        }
    }
    conditions = [in_time_range(CHECKS_TIME_FIELD), {"term": {"event.outcome": "failure"}}]
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(query_url(CHECKS_INDEX, conditions, aggs),
                     "aggregations.resolvers.buckets"),
        "transform": [
            {"flatten": ["kinds.buckets"], "as": ["kind"]},
            {"calculate": "datum.kind.key", "as": "error_type"},
            {"calculate": "datum.kind.doc_count", "as": "failures"},
        ],
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "key", "type": "nominal", "title": "resolver",
                  "sort": {"op": "sum", "field": "failures", "order": "descending"}},
            "x": {"field": "failures", "type": "quantitative", "stack": "zero",
                  "title": "failed check documents", "axis": COUNT_AXIS},
            "color": {"field": "error_type", "type": "nominal", "title": "error.type"},
            "tooltip": tooltip(("key", "nominal", "resolver"),
                               ("error_type", "nominal", "error.type"),
                               ("failures", "quantitative", "failures")),
        },
    }
    return VegaPanel(
        "edgewatch-failures-by-resolver-kind", "edgewatch · failures by resolver and kind",
        "Failed checks (event.outcome: failure) per resolver, split by error.type: dns.* is the "
        "resolver failing, tcp.*/tls.* is an answered address not serving the name.", spec,
        (HALF_WIDTH, bar_rows(RESOLVER_ROWS)))


def edge_hostnames() -> VegaPanel:
    aggs = {
        "domains": {
            "terms": {"field": "destination.domain", "size": HOSTNAME_ROWS,
                        "missing": "(no PTR)"},
            "aggs": {"unique_ips": {"cardinality": {"field": "destination.ip"}}},
        }
    }
    conditions = [in_time_range(CHECKS_TIME_FIELD), {"exists": {"field": "destination.ip"}}]
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(query_url(CHECKS_INDEX, conditions, aggs),
                     "aggregations.domains.buckets"),
        "transform": [{"calculate": "datum.unique_ips.value", "as": "ips"}],
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "key", "type": "nominal", "title": "edge hostname (PTR)",
                  "sort": {"field": "doc_count", "order": "descending"},
                  "axis": HOSTNAME_AXIS},
            "x": {"field": "doc_count", "type": "quantitative", "title": "check documents",
                  "axis": COUNT_AXIS},
            "tooltip": tooltip(("key", "nominal", "edge hostname"),
                               ("doc_count", "quantitative", "check documents"),
                               ("ips", "quantitative", "distinct addresses")),
        },
    }
    return VegaPanel(
        "edgewatch-edge-hostnames", "edgewatch · edge hostnames",
        "Reverse-DNS names of the answered addresses: which CDN edges (and how many addresses "
        "behind each name) serve the API.", spec, (FULL_WIDTH, bar_rows(HOSTNAME_ROWS)))


def timings_over_time() -> VegaPanel:
    pct = [50, 95]
    aggs = {"over_time": over_time(CHECKS_TIME_FIELD, {
        "tcp_connect": {"percentiles": {"field": "tcp.rtt.connect.us", "percents": pct,
                                        "keyed": False}},
        "tls_handshake": {"percentiles": {"field": "tls.rtt.handshake.us", "percents": pct,
                                          "keyed": False}},
    })}
    series = [("tcp_connect", 0, "TCP connect p50"), ("tcp_connect", 1, "TCP connect p95"),
              ("tls_handshake", 0, "TLS handshake p50"), ("tls_handshake", 1, "TLS handshake p95")]
    # An interval without timings has null percentiles; null / 1000 is 0 in JavaScript, which
    # would draw a fake 0 ms point, so null stays null, and the line breaks there (a line joined
    # across the empty interval would claim timings nobody measured).
    transform: list[dict[str, Any]] = [
        {"calculate": f"isValid(datum.{agg}.values[{i}].value) ? "
                      f"datum.{agg}.values[{i}].value / 1000 : null", "as": label}
        for agg, i, label in series
    ]
    transform += [
        {"fold": [label for _, _, label in series], "as": ["series", "ms"]},
    ]
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(context_url(CHECKS_INDEX, CHECKS_TIME_FIELD, aggs),
                     "aggregations.over_time.buckets"),
        "transform": transform,
        "mark": {"type": "line", "point": True, "tooltip": True, "invalid": BREAK_AT_NULL},
        "encoding": {
            "x": {"field": "key", "type": "temporal", "title": None},
            "y": {"field": "ms", "type": "quantitative", "title": "ms"},
            "color": {"field": "series", "type": "nominal", "title": None},
            "tooltip": tooltip(("key", "temporal", "interval start"),
                               ("series", "nominal", "timing"),
                               ("ms", "quantitative", "ms")),
        },
    }
    return VegaPanel(
        "edgewatch-timings-over-time", "edgewatch · TCP connect and TLS handshake over time",
        "Median and 95th percentile of the TCP connect and TLS handshake times to the answered "
        "addresses, per interval.", spec)


def handshake_per_resolver() -> VegaPanel:
    aggs = {
        "resolvers": {
            "terms": {"field": RESOLVER_NAME, "size": RESOLVER_ROWS},
            "aggs": {"tls_handshake": {"percentiles": {
                "field": "tls.rtt.handshake.us", "percents": [50, 95, 99], "keyed": False}}},
        }
    }
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(context_url(CHECKS_INDEX, CHECKS_TIME_FIELD, aggs),
                     "aggregations.resolvers.buckets"),
        "transform": [
            {"flatten": ["tls_handshake.values"], "as": ["p"]},
            {"calculate": "'p' + datum.p.key", "as": "percentile"},
            {"calculate": "datum.p.value / 1000", "as": "ms"},
            {"filter": "isValid(datum.p.value)"},
        ],
        "mark": {"type": "point", "filled": True, "size": 80, "tooltip": True},
        "encoding": {
            "y": {"field": "key", "type": "nominal", "title": "resolver"},
            "x": {"field": "ms", "type": "quantitative", "title": "TLS handshake (ms)"},
            "color": {"field": "percentile", "type": "nominal", "title": None},
            "tooltip": tooltip(("key", "nominal", "resolver"),
                               ("percentile", "nominal", "percentile"),
                               ("ms", "quantitative", "ms")),
        },
    }
    return VegaPanel(
        "edgewatch-handshake-per-resolver", "edgewatch · TLS handshake by resolver",
        "TLS handshake percentiles to the addresses each resolver handed out: a resolver whose "
        "answers (e.g. through EDNS Client Subnet) point at far edges shows up here.", spec,
        (HALF_WIDTH, bar_rows(RESOLVER_ROWS)))


# Dashboard order; build.py's layout puts half-width panels side by side, so neighbours here
# are chosen to be of one height.
VEGA_PANELS: list[Callable[[], VegaPanel]] = [
    unique_ips_over_time,
    new_ips_over_time,
    unique_ips_per_resolver,
    failures_by_resolver_and_kind,
    run_length_distribution,
    most_stable_ips,
    edge_hostnames,
    handshake_per_resolver,
    timings_over_time,
]
