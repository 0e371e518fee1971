"""The source of truth for ``kibana/edgewatch.ndjson``: edgewatch's Kibana 9.x saved objects.

Kibana's export format is one JSON object per line whose interesting parts (Vega specs, panel
layouts, search sources) are themselves JSON *strings* — unreadable to review and easy to break
by hand. So the objects are written here as Python data and serialised by ``render()``; the
committed ndjson is the output, and ``tests/kibana`` fails when the two differ
(``python kibana/build.py`` rewrites it, ``--check`` only compares).

Every chart is a Vega-Lite visualization whose data comes from an Elasticsearch aggregation
written out below. That is deliberate: Kibana runs a Vega spec's ``data.url`` as a plain
``_search`` (after substituting its ``%context%``/``%timefilter%`` placeholders), so the tests
can run exactly that search against a real Elasticsearch node and check the numbers — something
no test here can do for Lens, whose queries Kibana builds itself. Only aggregations that a
minimal node also has are used (terms, cardinality, date_histogram, range, percentiles, sum,
max, min, filter), so the panels work on any 9.x cluster.

Two ways a panel sees the dashboard (both are Kibana's, see docs/KIBANA.md):

* ``%context%: true`` + ``%timefield%``: Kibana writes the whole query (filter bar, query bar,
  time picker on that field). Used where nothing else needs filtering.
* an explicit ``body.query`` with the ``%dashboard_context-*_clause%`` strings and
  ``%timefilter%`` objects: used where the panel adds its own condition (failures only), or where
  the time picker must mean something other than "this field is in range" (a run *overlaps* the
  picked range when it started before its end and was last seen after its start).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "edgewatch.ndjson"

try:
    from pipeline.es import names
except ImportError:  # `python kibana/build.py` outside the project's virtualenv: use the checkout
    sys.path.insert(0, str(HERE.parent))
    from pipeline.es import names

# Index patterns: every namespace of the check data stream and of the run summaries, spelled
# once in pipeline/es/names.py (like the concrete logs-edgewatch.check-<ns>, edgewatch-runs-<ns>).
CHECKS_INDEX = names.CHECKS_INDEX_PATTERN
RUNS_INDEX = names.RUNS_INDEX_PATTERN

# Field names of schema 2 (docs/DOCUMENTS.md): ECS names only with ECS's meaning, Heartbeat's
# for timings, everything else under edgewatch.*. The edgewatch and Heartbeat names the panels
# use are spelled once here (ECS names, which do not move, are written out where used);
# tests/kibana/schema_names.py lists the retired schema-1 names, and a test fails on any saved
# object that still spells one.
CHECKS_TIME_FIELD = "@timestamp"
RESOLVER_NAME = "edgewatch.resolver.name"
PREFIX24 = "edgewatch.destination.prefix24"
RESOLVE_US = "resolve.rtt.us"
HTTP_RESPONSE_HEADER_US = "http.rtt.response_header.us"
RUN_START = "edgewatch.run.start"
RUN_LAST_SEEN = "edgewatch.run.last_seen"
RUN_OPEN = "edgewatch.run.open"
RUN_DURATION_S = "edgewatch.run.duration.s"
RUN_OBSERVED_S = "edgewatch.run.observed.s"
RUNS_TIME_FIELD = RUN_START

CHECKS_DATA_VIEW_ID = "edgewatch-checks"
RUNS_DATA_VIEW_ID = "edgewatch-runs"
DASHBOARD_ID = "edgewatch-overview"
DASHBOARD_TITLE = "edgewatch — can this API be allowlisted by IP?"

# Versions of the saved-object shapes written here. Kibana migrates an imported object from its
# typeMigrationVersion onward, so each must match the shape used: these are the versions Kibana's
# own sample data sets declare for the same shapes (dashboard panels in the 8.8 format, Vega
# visState, data views with name/runtimeFieldMap, searches with columns/sort). Kibana imports
# objects of the same or an older version only: 8.8 imports into every 9.x.
CORE_MIGRATION_VERSION = "8.8.0"
TYPE_MIGRATION_VERSION = {
    "index-pattern": "8.0.0",
    "search": "8.0.0",
    "visualization": "8.5.0",
    "dashboard": "8.7.0",
}
PANEL_VERSION = "8.8.0"

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
EMPTY_SEARCH_SOURCE = {"query": {"query": "", "language": "kuery"}, "filter": []}

# Where a panel's query takes the dashboard's filter bar and query bar from (Kibana substitutes
# these strings inside any array of body.query).
MUST_CLAUSE = "%dashboard_context-must_clause%"
FILTER_CLAUSE = "%dashboard_context-filter_clause%"
MUST_NOT_CLAUSE = "%dashboard_context-must_not_clause%"

HOUR_S = 3600
DAY_S = 86400


# --------------------------------------------------------------------------------------------
# How a panel asks Elasticsearch
# --------------------------------------------------------------------------------------------

def context_url(index: str, timefield: str, aggs: dict[str, Any]) -> dict[str, Any]:
    """Kibana supplies the whole query: filter bar, query bar, and the time picker on timefield."""
    return {
        "index": index,
        "%context%": True,
        "%timefield%": timefield,
        "body": {"size": 0, "aggs": aggs},
    }


def query_url(index: str, conditions: list[dict[str, Any]],
              aggs: dict[str, Any]) -> dict[str, Any]:
    """The panel's own conditions AND the dashboard's clauses (Kibana splices them in)."""
    return {
        "index": index,
        "body": {
            "size": 0,
            "query": {
                "bool": {
                    "must": [MUST_CLAUSE],
                    "filter": [FILTER_CLAUSE, *conditions],
                    "must_not": [MUST_NOT_CLAUSE],
                }
            },
            "aggs": aggs,
        },
    }


def in_time_range(timefield: str) -> dict[str, Any]:
    """``timefield`` within the time picker's range (Kibana fills gte/lte/format)."""
    return {"range": {timefield: {"%timefilter%": True}}}


def run_overlaps_time_range() -> list[dict[str, Any]]:
    """A run counts when it overlaps the picked range, not only when it *started* in it.

    Filtering runs on their start alone would hide exactly the long runs that matter most for
    an allowlist (an address handed out since before the range began).
    """
    return [
        {"range": {RUN_START: {"lte": {"%timefilter%": "max"}}}},
        {"range": {RUN_LAST_SEEN: {"gte": {"%timefilter%": "min"}}}},
    ]


def over_time(timefield: str, sub_aggs: dict[str, Any]) -> dict[str, Any]:
    """A date histogram across the whole picked range, about 50 buckets (Kibana's autointerval).

    Empty intervals are kept (``min_doc_count: 0`` to the range's bounds) so that a chart can
    tell "no checks then" from "checks, but nothing to count": it must draw the first as a gap,
    not as the zero its sub-aggregations report.
    """
    return {
        "date_histogram": {
            "field": timefield,
            "interval": {"%autointerval%": True},
            "min_doc_count": 0,
            "extended_bounds": {
                "min": {"%timefilter%": "min"},
                "max": {"%timefilter%": "max"},
            },
        },
        "aggs": sub_aggs,
    }


# Vega-Lite's mark.invalid mode that breaks a line at a null value (and hides the point there)
# instead of joining its neighbours across it.
BREAK_AT_NULL = "break-paths-show-domains"

# Counts are whole numbers: no 0.5 ticks on a chart of three addresses.
COUNT_AXIS = {"tickMinStep": 1}

# Vega cuts axis labels at 180 px by default, with an ellipsis at the end. An IPv6 address is up
# to 39 characters (about 220 px at the default 10 px font in a browser; 312 px by Vega's own
# estimate of 0.8 em a character where it cannot measure), and an IPv6 PTR name spells the
# address out before the common suffix (``g2a02-26f0-…-1234.deploy.static.example``), so the
# default cut would keep the shared front and drop exactly the part that tells two apart.
ADDRESS_AXIS = {"labelLimit": 320}
HOSTNAME_AXIS = {"labelLimit": 480}

# The address family of a check or run: its question type (A answers are IPv4, AAAA IPv6).
QUESTION_TYPE = "dns.question.type"
FAMILY_LABEL = ("datum.family.key == 'AAAA' ? 'AAAA (IPv6, /48)' : "
                "datum.family.key == 'A' ? 'A (IPv4, /24)' : datum.family.key")


def data(url: dict[str, Any], prop: str) -> dict[str, Any]:
    return {"url": url, "format": {"property": prop}}


def tooltip(*fields: tuple[str, str, str]) -> list[dict[str, Any]]:
    """Vega-Lite tooltip channels from (field, type, title) triples."""
    return [{"field": f, "type": t, "title": title} for f, t, title in fields]


# --------------------------------------------------------------------------------------------
# The panels
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VegaPanel:
    """One Vega-Lite visualization, its place on the dashboard and what it answers."""

    id: str
    title: str
    description: str
    spec: dict[str, Any]


def unique_ips_per_resolver() -> VegaPanel:
    distinct = {
        "unique_ips": {"cardinality": {"field": "destination.ip"}},
        "unique_prefix24": {"cardinality": {"field": PREFIX24}},
    }
    aggs = {
        "resolvers": {
            "terms": {"field": RESOLVER_NAME, "size": 50, "order": {"unique_ips": "desc"}},
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
        "needs every resolver's set, or prefixes.", spec)


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


RUN_LENGTH_BINS: list[tuple[str, int, int | None]] = [
    ("< 15 min", 0, 15 * 60),
    ("15 min – 1 h", 15 * 60, HOUR_S),
    ("1 – 6 h", HOUR_S, 6 * HOUR_S),
    ("6 – 24 h", 6 * HOUR_S, DAY_S),
    ("1 – 3 d", DAY_S, 3 * DAY_S),
    ("3 – 7 d", 3 * DAY_S, 7 * DAY_S),
    ("7 – 14 d", 7 * DAY_S, 14 * DAY_S),
    ("14 – 30 d", 14 * DAY_S, 30 * DAY_S),
    ("≥ 30 d", 30 * DAY_S, None),
]


def run_length_distribution() -> VegaPanel:
    ranges = []
    for label, lo, hi in RUN_LENGTH_BINS:
        r: dict[str, Any] = {"key": label, "from": lo}
        if hi is not None:
            r["to"] = hi
        ranges.append(r)
    aggs = {
        "state": {
            "terms": {"field": RUN_OPEN, "size": 2},
            "aggs": {"lengths": {"range": {"field": RUN_DURATION_S, "ranges": ranges}}},
        }
    }
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(query_url(RUNS_INDEX, run_overlaps_time_range(), aggs),
                     "aggregations.state.buckets"),
        "transform": [
            {"flatten": ["lengths.buckets"], "as": ["bin"]},
            {"calculate": "datum.key_as_string == 'true' ? 'open (still running)' : 'ended'",
             "as": "run_state"},
            {"calculate": "datum.bin.key", "as": "length"},
            {"calculate": "datum.bin.from", "as": "length_from"},
            {"calculate": "datum.bin.doc_count", "as": "runs"},
        ],
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "length", "type": "ordinal", "title": "run length",
                  "sort": {"field": "length_from", "order": "ascending"},
                  "axis": {"labelAngle": 0}},
            "y": {"field": "runs", "type": "quantitative", "stack": "zero", "title": "runs",
                  "axis": COUNT_AXIS},
            "color": {"field": "run_state", "type": "nominal", "title": None},
            "tooltip": tooltip(("length", "ordinal", "run length"),
                               ("run_state", "nominal", "state"),
                               ("runs", "quantitative", "runs")),
        },
    }
    return VegaPanel(
        "edgewatch-run-length-distribution", "edgewatch · how long an address stays (run length)",
        "IP runs overlapping the time range by length (log-spaced bins). A run is one "
        "resolver handing out one address without interruption; an address that comes back "
        "starts a new run. Open runs are still going: their length is a lower bound "
        "(right-censored), so they are stacked apart.", spec)


def failures_by_resolver_and_kind() -> VegaPanel:
    aggs = {
        "resolvers": {
            "terms": {"field": RESOLVER_NAME, "size": 50},
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
        "resolver failing, tcp.*/tls.* is an answered address not serving the name.", spec)


def most_stable_ips() -> VegaPanel:
    aggs = {
        "ips": {
            "terms": {"field": "destination.ip", "size": 25, "order": {"total_s": "desc"}},
            "aggs": {
                "total_s": {"sum": {"field": RUN_DURATION_S}},
                "longest_s": {"max": {"field": RUN_DURATION_S}},
                "resolvers": {"cardinality": {"field": RESOLVER_NAME}},
                "open_runs": {"filter": {"term": {RUN_OPEN: True}}},
                "domain": {"terms": {"field": "destination.domain", "size": 1}},
            },
        }
    }
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(query_url(RUNS_INDEX, run_overlaps_time_range(), aggs),
                     "aggregations.ips.buckets"),
        "transform": [
            {"calculate": "datum.total_s.value / 3600", "as": "total_hours"},
            {"calculate": "datum.longest_s.value / 3600", "as": "longest_hours"},
            {"calculate": "datum.doc_count", "as": "runs"},
            {"calculate": "datum.resolvers.value", "as": "resolver_count"},
            {"calculate": "datum.open_runs.doc_count", "as": "open"},
            {"calculate": "datum.open > 0 ? 'still in answers' : 'no longer in answers'",
             "as": "state"},
            {"calculate": "length(datum.domain.buckets) > 0 ? datum.domain.buckets[0].key : ''",
             "as": "edge"},
        ],
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "key", "type": "nominal", "title": "address",
                  "sort": {"field": "total_hours", "order": "descending"},
                  "axis": ADDRESS_AXIS},
            "x": {"field": "total_hours", "type": "quantitative",
                  "title": "hours in answers (sum of run lengths over resolvers)"},
            "color": {"field": "state", "type": "nominal", "title": None},
            "tooltip": tooltip(("key", "nominal", "address"),
                               ("edge", "nominal", "edge hostname"),
                               ("total_hours", "quantitative", "hours (sum)"),
                               ("longest_hours", "quantitative", "longest run (h)"),
                               ("runs", "quantitative", "runs"),
                               ("resolver_count", "quantitative", "resolvers"),
                               ("open", "quantitative", "open runs")),
        },
    }
    return VegaPanel(
        "edgewatch-most-stable-ips", "edgewatch · most stable addresses",
        "Addresses ranked by the summed length of their runs over all resolvers, with the run "
        "count and the longest single run: the candidates for a short allowlist.", spec)


def edge_hostnames() -> VegaPanel:
    aggs = {
        "domains": {
            "terms": {"field": "destination.domain", "size": 30, "missing": "(no PTR)"},
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
        "behind each name) serve the API.", spec)


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
    # would draw a fake 0 ms point, so null stays null and the filter below drops it.
    transform: list[dict[str, Any]] = [
        {"calculate": f"isValid(datum.{agg}.values[{i}].value) ? "
                      f"datum.{agg}.values[{i}].value / 1000 : null", "as": label}
        for agg, i, label in series
    ]
    transform += [
        {"fold": [label for _, _, label in series], "as": ["series", "ms"]},
        {"filter": "isValid(datum.ms)"},
    ]
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(context_url(CHECKS_INDEX, CHECKS_TIME_FIELD, aggs),
                     "aggregations.over_time.buckets"),
        "transform": transform,
        "mark": {"type": "line", "point": True, "tooltip": True},
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
            "terms": {"field": RESOLVER_NAME, "size": 50},
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
        "answers (e.g. through EDNS Client Subnet) point at far edges shows up here.", spec)


VEGA_PANELS: list[Callable[[], VegaPanel]] = [
    unique_ips_per_resolver,
    unique_ips_over_time,
    new_ips_over_time,
    run_length_distribution,
    failures_by_resolver_and_kind,
    most_stable_ips,
    edge_hostnames,
    timings_over_time,
    handshake_per_resolver,
]

FAILURES_SEARCH_ID = "edgewatch-failures"
HELP_ID = "edgewatch-help"

HELP_MARKDOWN = f"""\
**Reading this dashboard.** Each check document is one resolver × one answered address × one \
cycle; failures without an address are one document per resolver. A *run* is one resolver \
handing out one address without interruption (a failed query is a gap, not an end); an address \
that comes back starts a new run. Filter by `dns.question.name` to look at one hostname, by \
`{RESOLVER_NAME}` for one resolver, by `{QUESTION_TYPE}` (`A` or `AAAA`) for one address \
family: every panel, runs included, then shows IPv4 or IPv6 alone. `edgewatch report` gives \
the same answers with survival statistics and a coverage-based allowlist; this dashboard is for \
looking around."""


# --------------------------------------------------------------------------------------------
# Saved objects
# --------------------------------------------------------------------------------------------

def saved_object(obj_id: str, obj_type: str, attributes: dict[str, Any],
                 references: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "id": obj_id,
        "type": obj_type,
        "attributes": attributes,
        "references": references or [],
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": TYPE_MIGRATION_VERSION[obj_type],
        "managed": False,
    }


def compact(value: Any) -> str:
    """JSON as Kibana stores it inside attributes (a string, no whitespace)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def data_view(obj_id: str, title: str, name: str, time_field: str,
              field_formats: dict[str, Any]) -> dict[str, Any]:
    return saved_object(obj_id, "index-pattern", {
        "title": title,
        "name": name,
        "timeFieldName": time_field,
        "fields": "[]",  # Kibana reads the field list from the mappings
        "fieldFormatMap": compact(field_formats),
        "runtimeFieldMap": "{}",  # none: runtime fields need painless, absent on minimal nodes
        "typeMeta": "{}",
        "allowNoIndex": True,  # the data stream appears with the first check document
    })


MICROSECONDS_AS_DURATION = {"id": "duration", "params": {
    "inputFormat": "microseconds", "outputFormat": "humanizePrecise", "outputPrecision": 1}}
SECONDS_AS_DURATION = {"id": "duration", "params": {
    "inputFormat": "seconds", "outputFormat": "humanizePrecise", "outputPrecision": 1}}


def data_views() -> list[dict[str, Any]]:
    checks_formats = {f: MICROSECONDS_AS_DURATION for f in (
        RESOLVE_US, "tcp.rtt.connect.us", "tls.rtt.handshake.us", HTTP_RESPONSE_HEADER_US)}
    runs_formats = {f: SECONDS_AS_DURATION for f in (RUN_DURATION_S, RUN_OBSERVED_S)}
    return [
        data_view(CHECKS_DATA_VIEW_ID, CHECKS_INDEX, "edgewatch checks", CHECKS_TIME_FIELD,
                  checks_formats),
        data_view(RUNS_DATA_VIEW_ID, RUNS_INDEX, "edgewatch runs", RUNS_TIME_FIELD,
                  runs_formats),
    ]


def vega_visualization(panel: VegaPanel) -> dict[str, Any]:
    vis_state = {
        "title": panel.title,
        "type": "vega",
        "aggs": [],
        # Pretty JSON (valid HJSON) so the spec reads well in Kibana's Vega editor.
        "params": {"spec": json.dumps(panel.spec, ensure_ascii=False, indent=2)},
    }
    return saved_object(panel.id, "visualization", {
        "title": panel.title,
        "description": panel.description,
        "visState": compact(vis_state),
        "uiStateJSON": "{}",
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": compact(EMPTY_SEARCH_SOURCE)},
    })


def help_visualization() -> dict[str, Any]:
    title = "edgewatch · how to read this dashboard"
    vis_state = {"title": title, "type": "markdown", "aggs": [],
                 "params": {"fontSize": 12, "openLinksInNewTab": False,
                            "markdown": HELP_MARKDOWN}}
    return saved_object(HELP_ID, "visualization", {
        "title": title,
        "description": "",
        "visState": compact(vis_state),
        "uiStateJSON": "{}",
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": compact(EMPTY_SEARCH_SOURCE)},
    })


FAILURE_COLUMNS = [RESOLVER_NAME, "dns.question.name", QUESTION_TYPE, "error.type",
                   "error.message", "destination.ip", "destination.domain", "dns.response_code"]


def failures_search() -> dict[str, Any]:
    source = {
        "query": {"query": 'event.outcome : "failure"', "language": "kuery"},
        "filter": [],
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
    }
    return saved_object(FAILURES_SEARCH_ID, "search", {
        "title": "edgewatch · failed checks",
        "description": "Every failed check document, newest first, with the resolver, the "
                       "error and the address it concerned.",
        "columns": FAILURE_COLUMNS,
        "sort": [[CHECKS_TIME_FIELD, "desc"]],
        "grid": {},
        "hideChart": False,
        "isTextBasedQuery": False,
        "timeRestore": False,
        "kibanaSavedObjectMeta": {"searchSourceJSON": compact(source)},
    }, [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern",
         "id": CHECKS_DATA_VIEW_ID}])


@dataclass(frozen=True)
class Panel:
    """A dashboard panel showing the saved object ``ref_id`` at ``grid`` = (x, y, w, h)."""

    ref_id: str
    ref_type: str
    grid: tuple[int, int, int, int]


def dashboard(panels: list[Panel]) -> dict[str, Any]:
    """By-reference panels: ``panelRefName: panel_<i>`` and a reference of that name each."""
    panels_json = []
    references = []
    for i, p in enumerate(panels):
        x, y, w, h = p.grid
        index = str(i + 1)
        panels_json.append({
            "version": PANEL_VERSION,
            "type": p.ref_type,
            "gridData": {"x": x, "y": y, "w": w, "h": h, "i": index},
            "panelIndex": index,
            "embeddableConfig": {"enhancements": {}},
            "panelRefName": f"panel_{i}",
        })
        references.append({"name": f"panel_{i}", "type": p.ref_type, "id": p.ref_id})
    return saved_object(DASHBOARD_ID, "dashboard", {
        "title": DASHBOARD_TITLE,
        "description": "Which addresses each resolver hands out for the probed hostnames, how "
                       "long each stays, whether each serves the name over TLS, and how often "
                       "checks fail: the evidence for (or against) an IP allowlist.",
        "panelsJSON": compact(panels_json),
        "optionsJSON": compact({"useMargins": True, "syncColors": False, "syncCursor": True,
                                "syncTooltips": False, "hidePanelTitles": False}),
        "timeRestore": True,
        "timeFrom": "now-14d",
        "timeTo": "now",
        "refreshInterval": {"pause": True, "value": 60000},
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": compact(EMPTY_SEARCH_SOURCE)},
    }, references)


GRID_COLUMNS = 48
HELP_HEIGHT = 6
PANEL_HEIGHT = 15


def layout(count: int) -> list[tuple[int, int, int, int]]:
    """Two panels a row under the help text, on Kibana's 48-column grid: (x, y, w, h)."""
    half = GRID_COLUMNS // 2
    return [((i % 2) * half, HELP_HEIGHT + (i // 2) * PANEL_HEIGHT, half, PANEL_HEIGHT)
            for i in range(count)]


def build_objects() -> list[dict[str, Any]]:
    """Every saved object, dependencies first (data views, then what uses them, then the board)."""
    vega = [make() for make in VEGA_PANELS]
    objects = data_views()
    objects += [vega_visualization(p) for p in vega]
    objects.append(help_visualization())
    objects.append(failures_search())
    charts = [(p.id, "visualization") for p in vega] + [(FAILURES_SEARCH_ID, "search")]
    board = [Panel(HELP_ID, "visualization", (0, 0, GRID_COLUMNS, HELP_HEIGHT))]
    board += [Panel(ref_id, ref_type, grid)
              for (ref_id, ref_type), grid in zip(charts, layout(len(charts)), strict=True)]
    objects.append(dashboard(board))
    return objects


def render(objects: list[dict[str, Any]] | None = None) -> str:
    """The ndjson text: one object per line, keys in a fixed order, UTF-8, trailing newline."""
    lines = [json.dumps(o, ensure_ascii=False, separators=(",", ":"))
             for o in (build_objects() if objects is None else objects)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write kibana/edgewatch.ndjson from this file.")
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 if the committed file is out of date")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python kibana/build.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {len(text.splitlines())} objects to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
