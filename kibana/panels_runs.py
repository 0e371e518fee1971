"""The run timeline: every IP run in the picked range as a bar, one lane per resolver or address.

The other run panels (panels_core.py) summarise runs into lengths and totals; a person looking at
a rotation wants to *see* it: which address each resolver handed out when, for how long, which
ones are still answered, and that an address coming back is a new run. ``VEGA_PANELS`` is this
module's contribution to the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vega_common import (
    ADDRESS_AXIS,
    PREFIX24,
    QUESTION_TYPE,
    RESOLVER_NAME,
    RUN_LAST_SEEN,
    RUN_OPEN,
    RUN_START,
    RUNS_INDEX,
    VEGA_LITE_SCHEMA,
    VegaPanel,
    data,
    query_url,
    run_overlaps_time_range,
    tooltip,
)

RUN_ID = "edgewatch.run.id"
RUN_END = "edgewatch.run.end"
ASN = "destination.as.number"

# The row cap: at most this many runs are drawn, the most recently seen first. A run is one
# terms bucket (the runs index holds one document per run id), so a range with more runs loses
# its oldest-seen ones, never part of a run; narrow the time range or filter a resolver then.
RUN_ROWS = 500

# The keyword-like facts of a run, read from doc values (the same in every cluster, whatever
# shape the stored _source has); its times come from min/max aggregations instead, which give
# epoch milliseconds that Vega can draw without parsing.
RUN_FACTS = [RESOLVER_NAME, "destination.ip", PREFIX24, ASN, RUN_OPEN, "dns.question.name",
             QUESTION_TYPE]


def _fact(name: str, missing: str = "''") -> str:
    """A Vega expression for one doc-value fact of the run (``missing`` when it has none)."""
    return f"isValid(datum.f['{name}']) ? datum.f['{name}'][0] : {missing}"


def run_timeline_aggs() -> dict[str, Any]:
    return {
        "runs": {
            "terms": {"field": RUN_ID, "size": RUN_ROWS, "order": {"last_seen": "desc"}},
            "aggs": {
                "start": {"min": {"field": RUN_START}},
                "last_seen": {"max": {"field": RUN_LAST_SEEN}},
                "end": {"max": {"field": RUN_END}},
                # echoes the picked range back (a range bucket reports its bounds), so that the
                # chart can clip a run that began long before it to the range's left edge
                "picked": {"range": {"field": RUN_LAST_SEEN, "ranges": [
                    {"from": {"%timefilter%": "min"}, "to": {"%timefilter%": "max"}}]}},
                "run": {"top_hits": {"size": 1, "_source": False,
                                     "docvalue_fields": RUN_FACTS}},
            },
        }
    }


def run_timeline_transform() -> list[dict[str, Any]]:
    return [
        {"calculate": "datum.run.hits.hits[0].fields", "as": "f"},
        {"calculate": _fact(RESOLVER_NAME), "as": "resolver"},
        {"calculate": _fact("destination.ip"), "as": "address"},
        {"calculate": _fact("dns.question.name"), "as": "target"},
        {"calculate": _fact(QUESTION_TYPE), "as": "family"},
        {"calculate": _fact(PREFIX24, "'(no prefix)'"), "as": "prefix"},
        {"calculate": f"isValid(datum.f['{ASN}']) ? 'AS' + datum.f['{ASN}'][0] : '(no ASN)'",
         "as": "asn"},
        {"calculate": _fact(RUN_OPEN, "false"), "as": "open"},
        {"calculate": "datum.start.value", "as": "run_start"},
        {"calculate": "datum.picked.buckets[0].from", "as": "range_from"},
        {"calculate": "datum.picked.buckets[0].to", "as": "range_to"},
        # an ended run's bar reaches its end (the first answer without the address); an open
        # run's, its last sighting: nothing is known past it
        {"calculate": "isValid(datum.end.value) ? datum.end.value : datum.last_seen.value",
         "as": "run_until"},
        {"calculate": "(datum.run_until - datum.run_start) / 3600000", "as": "hours"},
        # what is drawn: the run within the picked range (the tooltip keeps the true times)
        {"calculate": "max(datum.run_start, datum.range_from)", "as": "bar_from"},
        {"calculate": "min(datum.run_until, datum.range_to)", "as": "bar_until"},
        {"calculate": "datum.open ? 'open (still answered)' : 'ended'", "as": "state"},
        {"calculate": "lanes == 'address' ? datum.address : datum.resolver", "as": "lane"},
        # within a lane, one row per address (or resolver): two addresses a resolver hands out
        # at once are two rows, and a reused address is two bars on one row
        {"calculate": "lanes == 'address' ? datum.resolver : datum.address", "as": "row"},
        {"calculate": "colour == 'ASN' ? datum.asn : datum.prefix", "as": "network"},
    ]


def run_timeline() -> VegaPanel:
    tips = tooltip(("address", "nominal", "address"), ("resolver", "nominal", "resolver"),
                   ("target", "nominal", "hostname"), ("family", "nominal", "record type"),
                   ("prefix", "nominal", "/24 or /48"), ("asn", "nominal", "ASN"),
                   ("run_start", "temporal", "run start"),
                   ("run_until", "temporal", "end (ended) or last seen (open)"),
                   ("hours", "quantitative", "hours"), ("state", "nominal", "state"))
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": data(query_url(RUNS_INDEX, run_overlaps_time_range(), run_timeline_aggs()),
                     "aggregations.runs.buckets"),
        "params": [
            {"name": "lanes", "value": "resolver",
             "bind": {"input": "radio", "options": ["resolver", "address"],
                      "name": "one lane per "}},
            {"name": "colour", "value": "prefix",
             "bind": {"input": "radio", "options": ["prefix", "ASN"], "name": "colour by "}},
        ],
        "transform": run_timeline_transform(),
        "encoding": {
            "y": {"field": "lane", "type": "nominal", "title": None, "axis": ADDRESS_AXIS},
            "yOffset": {"field": "row", "type": "nominal"},
            "tooltip": tips,
        },
        "layer": [
            {"mark": {"type": "bar", "tooltip": True, "height": {"band": 1}},
             "encoding": {
                 "x": {"field": "bar_from", "type": "temporal", "title": None},
                 "x2": {"field": "bar_until"},
                 "color": {"field": "network", "type": "nominal", "title": None},
                 "opacity": {"condition": {"test": "datum.open", "value": 1}, "value": 0.55},
             }},
            # open runs end in a marker: the bar is a lower bound, the run goes on
            {"transform": [{"filter": "datum.open"}],
             "mark": {"type": "point", "shape": "triangle-right", "filled": True, "size": 40,
                      "color": "black", "tooltip": True},
             "encoding": {"x": {"field": "bar_until", "type": "temporal"}}},
        ],
    }
    return VegaPanel(
        "edgewatch-run-timeline", "edgewatch · run timeline",
        "Every IP run overlapping the time range as a bar from its start to its end (ended) or "
        "last sighting (open, marked ▶ and drawn solid), one lane per resolver or per address "
        "(switch below the chart), coloured by /24-/48 prefix or ASN, clipped to the time "
        "range (the tooltip has the true start). An address that comes back is a second bar on "
        f"the same row. At most {RUN_ROWS} runs, the most recently "
        "seen first.", spec)


VEGA_PANELS: list[Callable[[], VegaPanel]] = [run_timeline]
