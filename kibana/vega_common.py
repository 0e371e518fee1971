"""The vocabulary every dashboard panel shares: index patterns, field names, query helpers.

Split from build.py so that each group of panels can live in a module of its own
(panels_core.py and its siblings) while build.py only assembles the saved objects; see build.py's
docstring for why every chart is Vega-Lite over a written-out aggregation.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

try:
    from pipeline.es import names
except ImportError:  # `python kibana/build.py` outside the project's virtualenv: use the checkout
    sys.path.insert(0, str(HERE.parent))
    from pipeline.es import names

# Index patterns: every namespace of the check data stream and of the run summaries, spelled
# once in pipeline/es/names.py (like the concrete logs-edgewatch.check-<ns>, edgewatch-runs-<ns>).
CHECKS_INDEX = names.CHECKS_INDEX_PATTERN
RUNS_INDEX = names.RUNS_INDEX_PATTERN
EVENTS_INDEX = names.EVENTS_INDEX_PATTERN
AFTERLIFE_INDEX = names.AFTERLIFE_INDEX_PATTERN

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
AFTERLIFE_AGE_S = "edgewatch.afterlife.age.s"

CHECKS_DATA_VIEW_ID = "edgewatch-checks"
RUNS_DATA_VIEW_ID = "edgewatch-runs"
EVENTS_DATA_VIEW_ID = "edgewatch-events"
AFTERLIFE_DATA_VIEW_ID = "edgewatch-afterlife"
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



# Kibana's dashboard grid: 48 columns, rows of 20 px with 8 px margins. A panel of w × h grid
# units gives its Vega view about 33·w − 2 by 28·h − 50 px once the panel header and padding are
# taken off (≈ 790 × 370 px for 24 × 15 on a 1,600 px wide window), and Kibana draws Vega with
# autosize "fit" at exactly that size: a bar chart's rows are that height divided by its
# categories, not what the spec asks for.
GRID_COLUMNS = 48
HALF_WIDTH = GRID_COLUMNS // 2
FULL_WIDTH = GRID_COLUMNS
DEFAULT_PANEL_SIZE = (HALF_WIDTH, 15)
# The fewest pixels a bar row (a 10 px label plus air) needs to stay readable.
MIN_ROW_PX = 14


def container_size(width: int, height: int) -> tuple[int, int]:
    """The pixels Kibana gives a Vega view in a panel of ``width`` × ``height`` grid units."""
    return 33 * width - 2, 28 * height - 50


def bar_rows(rows: int, extra_px: int = 60) -> int:
    """Grid rows a panel needs so that ``rows`` bars get MIN_ROW_PX each (plus axes, legend).

    A terms aggregation's ``size`` is the most bars a panel can get, so panels are sized for
    that many: a chart of 50 resolvers in a 370 px view would have 7 px rows.
    """
    px = rows * MIN_ROW_PX + extra_px
    return max(DEFAULT_PANEL_SIZE[1], -(-(px + 50) // 28))


# Run panels read the runs index, whose documents carry only the fields a run shares with its
# checks (docs/DOCUMENTS.md, "Run summary"): target, resolver, observer, address and network,
# family. Kibana hands a Vega query the dashboard's filters whole, so a filter on a check-only
# field (event.outcome, error.type, tls.*, …) matches no run and empties these panels; the
# dashboard's controls use shared fields only, and run panels say so under their title.
RUN_FILTERS_NOTE = ("runs: filters on target, resolver, observer, address, family apply; "
                    "a filter on a check-only field (event.outcome, error.type, tls.*) "
                    "empties this panel")


def run_panel_title(text: str) -> dict[str, Any]:
    """A small in-chart title whose subtitle says which dashboard filters a run panel obeys."""
    first, _, second = RUN_FILTERS_NOTE.partition("; ")
    return {"text": text, "subtitle": [first + ";", second], "anchor": "start",
            "fontSize": 11, "fontWeight": "normal", "subtitleFontSize": 10,
            "subtitleColor": "#69707d"}


@dataclass(frozen=True)
class VegaPanel:
    """One Vega-Lite visualization, its place on the dashboard and what it answers.

    ``size`` is (width, height) in Kibana grid units; build.py places panels in their order,
    two half-width ones to a row.
    """

    id: str
    title: str
    description: str
    spec: dict[str, Any]
    size: tuple[int, int] = DEFAULT_PANEL_SIZE

