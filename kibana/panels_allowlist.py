"""Allowlist coverage over time: the report's decay chart, live, for every deployed list.

The question an allowlist is for: what share of the connections would the firewall have let
through? Per interval that is the share of check documents (one per resolver × answered address
× cycle) whose ``edgewatch.allowlist.allowed`` names the list (docs/ALLOWLISTS.md). Beside the
deployed lists the panel draws "the list built from the first day": the addresses seen in the
first 24 hours of the picked range, as an allowlist built then and never updated would hold —
the decay a person wants to see before trusting a static list. ``VEGA_PANELS`` is this
module's contribution to the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vega_common import (
    BREAK_AT_NULL,
    CHECKS_INDEX,
    CHECKS_TIME_FIELD,
    VEGA_LITE_SCHEMA,
    VegaPanel,
    data,
    in_time_range,
    over_time,
    query_url,
    tooltip,
)

ALLOWED = "edgewatch.allowlist.allowed"
# Checks that no list allows have an empty ``allowed`` array, which is not indexed: the terms
# aggregation puts them in this bucket, so an interval always has a row even when no list
# allows anything (and the "allowed by no list" line is drawn from it).
NO_LIST = "(no list)"
LISTS_PER_INTERVAL = 20
# The per-interval address breakdown the first-day list is computed from; an interval with more
# distinct addresses than this undercounts that list (the share's denominator, the interval's
# check count, stays exact).
ADDRESSES_PER_INTERVAL = 500
FIRST_DAY = "built from the first day"
# An interval without checks has no list or address buckets; flattening would drop it and the
# lines would join its neighbours, as if coverage held through the gap. It gets one stand-in
# row instead, so every line has a null there and breaks (BREAK_AT_NULL), then the row goes.
GAP = "(no checks)"
# The Vega param (a slider under the chart) that says how many hours "the first day" is.
FIRST_HOURS = "first_hours"
FIRST_HOURS_DEFAULT = 24


def coverage_aggs() -> dict[str, Any]:
    return {"over_time": over_time(CHECKS_TIME_FIELD, {
        "lists": {"terms": {"field": ALLOWED, "size": LISTS_PER_INTERVAL, "missing": NO_LIST}},
        "ips": {"terms": {"field": "destination.ip", "size": ADDRESSES_PER_INTERVAL}},
    })}


def deployed_lists_layer() -> dict[str, Any]:
    """One line per list named in ``allowed``: allowed checks / checks with an address."""
    return {
        "transform": [
            {"calculate": f"datum.doc_count > 0 ? datum.lists.buckets : "
                          f"[{{key: '{GAP}', doc_count: 0}}]", "as": "lb"},
            {"flatten": ["lb"], "as": ["l"]},
            {"calculate": f"datum.l.key == '{NO_LIST}' ? 'allowed by no list' : datum.l.key",
             "as": "list"},
            {"calculate": "datum.l.doc_count / datum.doc_count", "as": "share"},
            {"calculate": "datum.l.doc_count", "as": "allowed"},
            {"calculate": "datum.doc_count", "as": "checks"},
            # an interval with checks but none that a list allows: 0 for that list, not a gap
            {"impute": "share", "key": "key", "groupby": ["list"], "value": 0},
            {"joinaggregate": [{"op": "max", "field": "checks", "as": "interval_checks"}],
             "groupby": ["key"]},
            {"calculate": "datum.interval_checks > 0 ? datum.share : null", "as": "share"},
            {"filter": f"datum.list != '{GAP}'"},
        ],
        "mark": {"type": "line", "point": True, "tooltip": True, "invalid": BREAK_AT_NULL},
    }


def first_day_layer() -> dict[str, Any]:
    """The list built from the first day, from the per-interval address breakdown.

    An address belongs to it when its first interval with a check starts within the first
    ``first_hours`` (24 unless the slider says otherwise) of the first interval with any check;
    its share per interval is the checks of those addresses over all checks with an address.
    """
    return {
        "transform": [
            {"calculate": f"datum.doc_count > 0 ? datum.ips.buckets : "
                          f"[{{key: '{GAP}', doc_count: 0}}]", "as": "ib"},
            {"flatten": ["ib"], "as": ["a"]},
            {"calculate": "datum.a.key", "as": "address"},
            {"calculate": "datum.a.doc_count", "as": "n"},
            {"calculate": "datum.doc_count > 0 ? datum.key : null", "as": "checked_key"},
            {"joinaggregate": [{"op": "min", "field": "key", "as": "address_first"}],
             "groupby": ["address"]},
            {"joinaggregate": [{"op": "min", "field": "checked_key", "as": "range_first"}]},
            {"calculate": f"datum.address_first < datum.range_first + {FIRST_HOURS} * 3600000 "
                          "? datum.n : 0", "as": "n_first_day"},
            {"aggregate": [{"op": "sum", "field": "n_first_day", "as": "allowed"},
                           {"op": "max", "field": "doc_count", "as": "checks"}],
             "groupby": ["key"]},
            {"calculate": "datum.checks > 0 ? datum.allowed / datum.checks : null",
             "as": "share"},
            {"calculate": f"'{FIRST_DAY}'", "as": "list"},
        ],
        "mark": {"type": "line", "point": True, "strokeDash": [4, 3], "tooltip": True,
                 "invalid": BREAK_AT_NULL},
    }


def allowlist_coverage() -> VegaPanel:
    conditions = [in_time_range(CHECKS_TIME_FIELD), {"exists": {"field": "destination.ip"}}]
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(query_url(CHECKS_INDEX, conditions, coverage_aggs()),
                     "aggregations.over_time.buckets"),
        "params": [{"name": FIRST_HOURS, "value": FIRST_HOURS_DEFAULT,
                    "bind": {"input": "range", "min": 1, "max": 168, "step": 1,
                             "name": "first-day list: hours "}}],
        "encoding": {
            "x": {"field": "key", "type": "temporal", "title": None},
            "y": {"field": "share", "type": "quantitative", "title": "checks allowed",
                  "axis": {"format": "%"}, "scale": {"domain": [0, 1]}},
            "color": {"field": "list", "type": "nominal", "title": "allowlist",
                      "legend": {"labelLimit": 240}},
            "tooltip": tooltip(("key", "temporal", "interval start"),
                               ("list", "nominal", "allowlist"),
                               ("share", "quantitative", "share allowed"),
                               ("allowed", "quantitative", "checks allowed"),
                               ("checks", "quantitative", "checks with an address")),
        },
        "layer": [deployed_lists_layer(), first_day_layer()],
    }
    return VegaPanel(
        "edgewatch-allowlist-coverage", "edgewatch · allowlist coverage over time",
        "Per interval, the share of checks (resolver × answered address × cycle) each deployed "
        "allowlist would have let through (edgewatch.allowlist.allowed), the share no list "
        "allows, and, dashed, an allowlist built from the addresses of the first 24 hours of "
        "the range (a slider changes the hours) and never updated: how fast a static list "
        "decays.", spec)


VEGA_PANELS: list[Callable[[], VegaPanel]] = [allowlist_coverage]
