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
import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "edgewatch.ndjson"
sys.path.insert(0, str(HERE))  # the panel modules sit beside this script, which is not a package

from controls import control_group_input, control_references  # noqa: E402
from vega_common import (  # noqa: E402
    AFTERLIFE_AGE_S,
    AFTERLIFE_DATA_VIEW_ID,
    AFTERLIFE_INDEX,
    CHECKS_DATA_VIEW_ID,
    CHECKS_INDEX,
    CHECKS_TIME_FIELD,
    CORE_MIGRATION_VERSION,
    DASHBOARD_ID,
    DASHBOARD_TITLE,
    DEFAULT_PANEL_SIZE,
    EMPTY_SEARCH_SOURCE,
    EVENTS_DATA_VIEW_ID,
    EVENTS_INDEX,
    GRID_COLUMNS,
    HTTP_RESPONSE_HEADER_US,
    PANEL_VERSION,
    PREFIX24,
    QUESTION_TYPE,
    RESOLVE_US,
    RESOLVER_NAME,
    RUN_DURATION_S,
    RUN_OBSERVED_S,
    RUNS_DATA_VIEW_ID,
    RUNS_INDEX,
    RUNS_TIME_FIELD,
    TYPE_MIGRATION_VERSION,
    VegaPanel,
)

FAILURES_SEARCH_ID = "edgewatch-failures"
MISSES_SEARCH_ID = "edgewatch-allowlist-misses"
AFTERLIFE_SEARCH_ID = "edgewatch-afterlife-checks"
HELP_ID = "edgewatch-help"

# "Status now" is the first thing a person looks at, then the nine original charts.
PANEL_MODULES_FIRST = ("panels_status", "panels_core")


def panel_factories() -> list[Callable[[], VegaPanel]]:
    """Every Vega panel of every ``kibana/panels_*.py`` module, in dashboard order.

    Each such module exports ``VEGA_PANELS`` (functions returning a ``VegaPanel``); status now
    and the nine original charts (panels_status, panels_core) come first, the other modules
    follow in name order. A new group of panels is a new module: neither this file nor the
    image renderer lists panels.
    """
    names = sorted(p.stem for p in HERE.glob("panels_*.py"))
    names.sort(key=lambda n: (PANEL_MODULES_FIRST.index(n) if n in PANEL_MODULES_FIRST
                              else len(PANEL_MODULES_FIRST)))
    factories: list[Callable[[], VegaPanel]] = []
    for name in names:
        factories += importlib.import_module(name).VEGA_PANELS
    return factories


HELP_MARKDOWN = f"""\
**Reading this dashboard.** Use the controls above the panels (target, resolver, observer, \
family): they filter on fields that check documents and runs share, so every panel follows \
them. Each check document is one resolver × one answered address × one \
cycle; failures without an address are one document per resolver. A *run* is one resolver \
handing out one address without interruption (a failed query is a gap, not an end); an address \
that comes back starts a new run. Filter by `dns.question.name` to look at one hostname, by \
`{RESOLVER_NAME}` for one resolver, by `{QUESTION_TYPE}` (`A` or `AAAA`) for one address \
family: every panel, runs included, then shows IPv4 or IPv6 alone. `edgewatch report` gives \
the same answers with survival statistics and a coverage-based allowlist; this dashboard is for \
looking around. Run panels read the runs index: a filter on a check-only field \
(`event.outcome`, `error.type`, `tls.*`) matches no run and empties them, as their subtitle \
says."""


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
    # an afterlife document's connect fields are the check document's (docs/DOCUMENTS.md)
    afterlife_formats = {f: MICROSECONDS_AS_DURATION for f in (
        "tcp.rtt.connect.us", "tls.rtt.handshake.us", HTTP_RESPONSE_HEADER_US)}
    afterlife_formats[AFTERLIFE_AGE_S] = SECONDS_AS_DURATION
    return [
        data_view(CHECKS_DATA_VIEW_ID, CHECKS_INDEX, "edgewatch checks", CHECKS_TIME_FIELD,
                  checks_formats),
        data_view(RUNS_DATA_VIEW_ID, RUNS_INDEX, "edgewatch runs", RUNS_TIME_FIELD,
                  runs_formats),
        # the allowlist-miss events and the checks of retired addresses: each its own data
        # stream (their data streams appear with their first document: allowNoIndex)
        data_view(EVENTS_DATA_VIEW_ID, EVENTS_INDEX, "edgewatch events", CHECKS_TIME_FIELD, {}),
        data_view(AFTERLIFE_DATA_VIEW_ID, AFTERLIFE_INDEX, "edgewatch afterlife",
                  CHECKS_TIME_FIELD, afterlife_formats),
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


MISS_COLUMNS = [RESOLVER_NAME, "dns.question.name", "destination.ip", PREFIX24,
                "destination.as.number", "edgewatch.allowlist.denied", "edgewatch.run.id",
                "message"]
AFTERLIFE_COLUMNS = ["dns.question.name", "destination.ip", AFTERLIFE_AGE_S, "event.outcome",
                     "error.type", "tls.server.x509.subject.common_name", "edgewatch.run.end"]


def saved_search(obj_id: str, data_view_id: str, title: str, description: str, kuery: str,
                 columns: list[str]) -> dict[str, Any]:
    """A Discover search, newest first, over one data view."""
    source = {
        "query": {"query": kuery, "language": "kuery"},
        "filter": [],
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
    }
    return saved_object(obj_id, "search", {
        "title": title,
        "description": description,
        "columns": columns,
        "sort": [[CHECKS_TIME_FIELD, "desc"]],
        "grid": {},
        "hideChart": False,
        "isTextBasedQuery": False,
        "timeRestore": False,
        "kibanaSavedObjectMeta": {"searchSourceJSON": compact(source)},
    }, [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern",
         "id": data_view_id}])


def failures_search() -> dict[str, Any]:
    return saved_search(
        FAILURES_SEARCH_ID, CHECKS_DATA_VIEW_ID, "edgewatch · failed checks",
        "Every failed check document, newest first, with the resolver, the error and the "
        "address it concerned.", 'event.outcome : "failure"', FAILURE_COLUMNS)


def misses_search() -> dict[str, Any]:
    """Where a deployed allowlist stops working: one event per IP run no list allows."""
    return saved_search(
        MISSES_SEARCH_ID, EVENTS_DATA_VIEW_ID, "edgewatch · allowlist misses",
        "One event per IP run whose address no configured allowlist allows (at the run's first "
        "check, or when a re-read list took it out), newest first: what a firewall with those "
        "lists would have blocked. Empty without [[allowlists]] in the config.",
        'event.action : "allowlist-miss"', MISS_COLUMNS)


def afterlife_search() -> dict[str, Any]:
    """Whether retired addresses still serve: the checks of the afterlife data stream."""
    return saved_search(
        AFTERLIFE_SEARCH_ID, AFTERLIFE_DATA_VIEW_ID, "edgewatch · retired addresses checked",
        "TCP and TLS checks of addresses no resolver hands out any more, newest first, with "
        "how long ago their last run ended: an address that still answers can stay on a list "
        "a while. Empty unless [afterlife] duration is set.", "", AFTERLIFE_COLUMNS)


@dataclass(frozen=True)
class Panel:
    """A dashboard panel showing the saved object ``ref_id`` at ``grid`` = (x, y, w, h)."""

    ref_id: str
    ref_type: str
    grid: tuple[int, int, int, int]


def dashboard(panels: list[Panel]) -> dict[str, Any]:
    """By-reference panels: ``panelRefName: panel_<i>`` and a reference of that name each;
    the controls (kibana/controls.py) with their data-view references after them."""
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
        "controlGroupInput": control_group_input(),
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": compact(EMPTY_SEARCH_SOURCE)},
    }, references + control_references())


HELP_HEIGHT = 7


def layout(sizes: list[tuple[int, int]], top: int = HELP_HEIGHT) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) on Kibana's 48-column grid for panels of the given (w, h), in order.

    Two columns: a half-width panel goes into the column that ends higher (left on a tie), so a
    tall panel beside two short ones leaves no hole; a wider panel spans both, below everything
    placed before it. The board reads in the order given, top to bottom.
    """
    half = GRID_COLUMNS // 2
    ends = [top, top]  # where the left and the right column end so far
    out: list[tuple[int, int, int, int]] = []
    for w, h in sizes:
        if w > half:
            y = max(ends)
            out.append((0, y, GRID_COLUMNS, h))
            ends = [y + h, y + h]
        else:
            col = 0 if ends[0] <= ends[1] else 1
            out.append((col * half, ends[col], w, h))
            ends[col] += h
    return out


def build_objects() -> list[dict[str, Any]]:
    """Every saved object, dependencies first (data views, then what uses them, then the board)."""
    vega = [make() for make in panel_factories()]
    objects = data_views()
    objects += [vega_visualization(p) for p in vega]
    objects.append(help_visualization())
    searches = [failures_search(), misses_search(), afterlife_search()]
    objects += searches
    charts = [(p.id, "visualization", p.size) for p in vega]
    charts += [(search["id"], "search", DEFAULT_PANEL_SIZE) for search in searches]
    board = [Panel(HELP_ID, "visualization", (0, 0, GRID_COLUMNS, HELP_HEIGHT))]
    grids = layout([size for _, _, size in charts])
    board += [Panel(ref_id, ref_type, grid)
              for (ref_id, ref_type, _), grid in zip(charts, grids, strict=True)]
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
