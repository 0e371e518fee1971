"""The state of things now: each target × resolver's latest cycle, and the certificates presented.

The other panels look back over the range; these two answer what a person on call asks first —
is every resolver answering, does every address it hands out pass, and which edge certificate
runs out soonest. ``VEGA_PANELS`` is this module's contribution to the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vega_common import (
    ADDRESS_AXIS,
    CHECKS_INDEX,
    CHECKS_TIME_FIELD,
    PREFIX24,
    QUESTION_TYPE,
    RESOLVER_NAME,
    VEGA_LITE_SCHEMA,
    VegaPanel,
    context_url,
    data,
    in_time_range,
    query_url,
    tooltip,
)

CYCLE_ID = "edgewatch.cycle.id"
ANSWER_COUNT = "edgewatch.dns.answer_count"
SHA256 = "tls.server.hash.sha256"
NOT_AFTER = "tls.server.x509.not_after"
NOT_BEFORE = "tls.server.x509.not_before"
SUBJECT_CN = "tls.server.x509.subject.common_name"
ISSUER_CN = "tls.server.x509.issuer.common_name"

# Row caps: hostnames × resolvers (the status board), and addresses × certificates each.
TARGET_ROWS = 20
RESOLVER_ROWS = 50
CERT_ADDRESS_ROWS = 100
CERTS_PER_ADDRESS = 10

# What a status cell's colour means, in the order of the legend (worst last).
STATES = ["all addresses passed", "some addresses failed", "every address failed", "DNS failed"]
STATE_COLOURS = ["#54b399", "#d6bf57", "#e7664c", "#bd271e"]

DAY_MS = 86_400_000


def latest_cycle_aggs() -> dict[str, Any]:
    """Per target → resolver the one cycle with the newest check, broken down by record type.

    Without ``top_metrics`` or ``bucket_sort`` (absent on a minimal node) the latest cycle is a
    terms bucket on the cycle id ordered by its newest ``@timestamp``, size 1: exact, because
    every document of a cycle carries its id.
    """
    per_type = {
        "answer": {"max": {"field": ANSWER_COUNT}},
        "addresses": {"cardinality": {"field": "destination.ip"}},
        "failed": {"filter": {"bool": {"filter": [{"term": {"event.outcome": "failure"}},
                                                  {"exists": {"field": "destination.ip"}}]}}},
        "dns_failed": {"filter": {"bool": {"must_not": [{"exists":
                                                         {"field": "destination.ip"}}]}}},
        "errors": {"terms": {"field": "error.type", "size": 3}},
    }
    latest = {
        "terms": {"field": CYCLE_ID, "size": 1, "order": {"at": "desc"}},
        "aggs": {"at": {"max": {"field": CHECKS_TIME_FIELD}},
                 "types": {"terms": {"field": QUESTION_TYPE, "size": 5}, "aggs": per_type}},
    }
    return {
        "targets": {
            "terms": {"field": "dns.question.name", "size": TARGET_ROWS, "order": {"_key": "asc"}},
            "aggs": {"resolvers": {
                "terms": {"field": RESOLVER_NAME, "size": RESOLVER_ROWS,
                          "order": {"_key": "asc"}},
                "aggs": {"latest": latest}}},
        }
    }


STATE_EXPR = ("datum.dns_failed ? 'DNS failed' : datum.failed == 0 ? 'all addresses passed' : "
              "datum.failed >= datum.addresses ? 'every address failed' : "
              "'some addresses failed'")


def status_now() -> VegaPanel:
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(context_url(CHECKS_INDEX, CHECKS_TIME_FIELD, latest_cycle_aggs()),
                     "aggregations.targets.buckets"),
        "transform": [
            {"flatten": ["resolvers.buckets"], "as": ["r"]},
            {"flatten": ["r.latest.buckets"], "as": ["cycle"]},
            {"flatten": ["cycle.types.buckets"], "as": ["t"]},
            {"calculate": "datum.key + ' · ' + datum.r.key", "as": "pair"},
            {"calculate": "datum.r.key", "as": "resolver"},
            {"calculate": "datum.t.key", "as": "record_type"},
            {"calculate": "datum.cycle.at.value", "as": "at"},
            {"calculate": "datum.cycle.key", "as": "cycle_id"},
            {"calculate": "datum.t.addresses.value", "as": "addresses"},
            {"calculate": "isValid(datum.t.answer.value) ? datum.t.answer.value : 0",
             "as": "answer_size"},
            {"calculate": "datum.t.failed.doc_count", "as": "failed"},
            {"calculate": "datum.t.dns_failed.doc_count > 0", "as": "dns_failed"},
            {"calculate": "length(datum.t.errors.buckets) > 0 ? datum.t.errors.buckets[0].key "
                          ": ''", "as": "first_error"},
            {"calculate": STATE_EXPR, "as": "state"},
            {"calculate": "datum.dns_failed ? datum.first_error : (datum.addresses - "
                          "datum.failed) + '/' + datum.addresses + ' ok'", "as": "label"},
        ],
        "encoding": {
            "y": {"field": "pair", "type": "nominal", "title": None, "axis": {"labelLimit": 400}},
            "x": {"field": "record_type", "type": "nominal", "title": None,
                  "axis": {"orient": "top", "labelAngle": 0}},
            "tooltip": tooltip(("pair", "nominal", "hostname · resolver"),
                               ("record_type", "nominal", "record type"),
                               ("at", "temporal", "latest cycle"),
                               ("cycle_id", "nominal", "edgewatch.cycle.id"),
                               ("state", "nominal", "state"),
                               ("answer_size", "quantitative", "addresses in the answer"),
                               ("addresses", "quantitative", "distinct addresses checked"),
                               ("failed", "quantitative", "addresses that failed"),
                               ("first_error", "nominal", "error.type")),
        },
        "layer": [
            {"mark": {"type": "rect", "tooltip": True},
             "encoding": {"color": {"field": "state", "type": "nominal", "title": None,
                                    "scale": {"domain": STATES, "range": STATE_COLOURS},
                                    "legend": {"labelLimit": 240}}}},
            {"mark": {"type": "text", "tooltip": True},
             "encoding": {"text": {"field": "label", "type": "nominal"}}},
        ],
    }
    return VegaPanel(
        "edgewatch-status-now", "edgewatch · status now (latest cycle)",
        "Per hostname × resolver and record type, the latest cycle in the time range: did DNS "
        "answer, how many addresses the answer had, and whether every answered address passed "
        "its TCP/TLS (and HTTP) check. Green everywhere: the API is reachable through every "
        "resolver right now.", spec)


def certificate_aggs() -> dict[str, Any]:
    """Per address (soonest-expiring first) every certificate it presented, with its span."""
    first = {"terms": {"field": SUBJECT_CN, "size": 1}}
    return {
        "addresses": {
            "terms": {"field": "destination.ip", "size": CERT_ADDRESS_ROWS,
                      "order": {"expires": "asc"}},
            "aggs": {
                "expires": {"min": {"field": NOT_AFTER}},
                "network": {"terms": {"field": PREFIX24, "size": 1}},
                "certs": {
                    "terms": {"field": SHA256, "size": CERTS_PER_ADDRESS,
                              "order": {"first_seen": "asc"}},
                    "aggs": {
                        "first_seen": {"min": {"field": CHECKS_TIME_FIELD}},
                        "last_seen": {"max": {"field": CHECKS_TIME_FIELD}},
                        "not_after": {"min": {"field": NOT_AFTER}},
                        "not_before": {"min": {"field": NOT_BEFORE}},
                        "subject": first,
                        "issuer": {"terms": {"field": ISSUER_CN, "size": 1}},
                        "verified": {"filter": {"term": {"edgewatch.tls.verified": True}}},
                    },
                },
            },
        }
    }


def _first_key(agg: str) -> str:
    return f"length(datum.c.{agg}.buckets) > 0 ? datum.c.{agg}.buckets[0].key : ''"


def certificate_transform() -> list[dict[str, Any]]:
    return [
        {"flatten": ["certs.buckets"], "as": ["c"]},
        {"calculate": "datum.key", "as": "address"},
        {"calculate": "datum.expires.value", "as": "soonest"},
        {"calculate": "length(datum.network.buckets) > 0 ? datum.network.buckets[0].key "
                      ": ''", "as": "network"},
        {"calculate": "datum.c.key", "as": "sha256"},
        {"calculate": _first_key("subject"), "as": "subject"},
        {"calculate": _first_key("issuer"), "as": "issuer"},
        {"calculate": "datum.c.not_after.value", "as": "not_after"},
        {"calculate": "datum.c.not_before.value", "as": "not_before"},
        {"calculate": "datum.c.first_seen.value", "as": "first_seen"},
        {"calculate": "datum.c.last_seen.value", "as": "last_seen"},
        {"calculate": "datum.c.verified.doc_count == datum.c.doc_count ? 'verified' : "
                      "datum.c.verified.doc_count == 0 ? 'not verified' : 'partly verified'",
         "as": "verification"},
        # days to expiry from the moment the panel is drawn, not from the end of the range
        {"calculate": f"floor((datum.not_after - now()) / {DAY_MS})", "as": "days_left"},
        {"calculate": "substring(datum.sha256, 0, 16) + '… ' + datum.subject",
         "as": "certificate"},
        # one lane per address or per network (the switch): its label names the soonest
        # expiry in it, so the text stays legible however many certificates a lane has and
        # wherever their bars end
        {"joinaggregate": [{"op": "min", "field": "soonest", "as": "network_soonest"}],
         "groupby": ["network"]},
        {"calculate": "lanes == 'network' ? datum.network : datum.address", "as": "lane_key"},
        {"calculate": "lanes == 'network' ? datum.network_soonest : datum.soonest",
         "as": "lane_soonest"},
        {"calculate": "lanes == 'network' ? datum.address : ''", "as": "sub"},
        {"calculate": f"floor((datum.lane_soonest - now()) / {DAY_MS})", "as": "lane_days"},
        {"calculate": "datum.lane_key + (datum.lane_days < 0 ? '  expired ' + "
                      "(-datum.lane_days) + ' d ago' : '  ' + datum.lane_days + ' d left')",
         "as": "row"},
    ]


def certificates() -> VegaPanel:
    conditions = [in_time_range(CHECKS_TIME_FIELD), {"exists": {"field": SHA256}}]
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(query_url(CHECKS_INDEX, conditions, certificate_aggs()),
                     "aggregations.addresses.buckets"),
        "transform": certificate_transform(),
        "params": [{"name": "lanes", "value": "address",
                    "bind": {"input": "radio", "options": ["address", "network"],
                             "name": "one lane per "}}],
        "encoding": {
            "y": {"field": "row", "type": "nominal", "title": None, "axis": ADDRESS_AXIS,
                  "sort": {"field": "lane_soonest", "op": "min", "order": "ascending"}},
            "yOffset": {"field": "sub", "type": "nominal"},
            "color": {"field": "certificate", "type": "nominal", "title": "certificate",
                      "legend": {"labelLimit": 320}},
            "tooltip": tooltip(("address", "nominal", "address"),
                               ("network", "nominal", "/24 or /48"),
                               ("subject", "nominal", "subject CN"),
                               ("issuer", "nominal", "issuer CN"),
                               ("sha256", "nominal", "SHA-256"),
                               ("not_before", "temporal", "not before"),
                               ("not_after", "temporal", "not after"),
                               ("days_left", "quantitative", "days to expiry"),
                               ("verification", "nominal", "verification"),
                               ("first_seen", "temporal", "first presented"),
                               ("last_seen", "temporal", "last presented")),
        },
        "layer": [
            # one bar per certificate from its first to its last check: a change of
            # certificate on an address is a new colour further along the same row
            {"mark": {"type": "bar", "tooltip": True},
             "encoding": {"x": {"field": "first_seen", "type": "temporal", "title": None},
                          "x2": {"field": "last_seen"}}},
            # a certificate seen in one check only has a bar of no width: the mark shows it
            {"mark": {"type": "point", "shape": "square", "filled": True, "tooltip": True},
             "encoding": {"x": {"field": "first_seen", "type": "temporal"}}},
        ],
    }
    return VegaPanel(
        "edgewatch-certificates", "edgewatch · certificates presented (soonest expiry first)",
        "Per edge address or /24-/48 network (switch below the chart) every certificate "
        "presented in the range — subject, issuer, SHA-256, validity, whether it verified — as "
        "a bar from its first to its last check, with the days to expiry; the address whose "
        "certificate runs out first is on top, and a change of certificate is a new bar.", spec)


VEGA_PANELS: list[Callable[[], VegaPanel]] = [status_now, certificates]
