"""The two run charts of the first nine: how long an address stays, and the most stable ones.

Split from panels_core.py (which lists them in ``VEGA_PANELS``, in their place on the board)
to keep each module small; the name does not match ``panels_*.py`` so build.py does not pick
these up a second time.
"""

from __future__ import annotations

from typing import Any

from vega_common import (
    ADDRESS_AXIS,
    COUNT_AXIS,
    DAY_S,
    HALF_WIDTH,
    HOUR_S,
    RESOLVER_NAME,
    RUN_DURATION_S,
    RUN_OPEN,
    RUNS_INDEX,
    VEGA_LITE_SCHEMA,
    VegaPanel,
    bar_rows,
    data,
    query_url,
    run_overlaps_time_range,
    run_panel_title,
    tooltip,
)

STABLE_ROWS = 25  # the most addresses the panel ranks (its terms size)

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
        "title": run_panel_title("IP runs overlapping the time range"),
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
        "(right-censored), so they are stacked apart.", spec,
        (HALF_WIDTH, bar_rows(STABLE_ROWS, extra_px=90)))


def most_stable_ips() -> VegaPanel:
    aggs = {
        "ips": {
            "terms": {"field": "destination.ip", "size": STABLE_ROWS,
                      "order": {"total_s": "desc"}},
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
        "title": run_panel_title(f"top {STABLE_ROWS} addresses by time in answers"),
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
        "count and the longest single run: the candidates for a short allowlist.", spec,
        (HALF_WIDTH, bar_rows(STABLE_ROWS, extra_px=90)))
