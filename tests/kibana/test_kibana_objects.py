"""Structure of kibana/edgewatch.ndjson: what Kibana's import checks, and what it does not.

Kibana's import rejects an object whose references point nowhere, and a dashboard whose panel
names a reference that is missing fails only when someone opens it; a Vega spec that does not
parse, or a field that no document has, shows up as an empty or broken panel. None of that can
be seen here without a Kibana, so it is checked on the file itself.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from kibana_vega import data_sources, fields_used, vega_specs

REQUIRED_KEYS = {"id", "type", "attributes", "references", "coreMigrationVersion",
                 "typeMigrationVersion", "managed"}
KNOWN_TYPES = {"index-pattern", "visualization", "search", "dashboard"}
NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
# Aggregation (or query) → field types it can work on.
ACCEPTS = {
    "terms": NUMERIC | {"keyword", "ip", "boolean", "date"},
    "cardinality": NUMERIC | {"keyword", "ip", "boolean", "date"},
    "date_histogram": {"date"},
    "histogram": NUMERIC,
    "range": NUMERIC | {"date"},
    "percentiles": NUMERIC,
    "sum": NUMERIC,
    "avg": NUMERIC,
    "max": NUMERIC | {"date"},
    "min": NUMERIC | {"date"},
    "timefield": {"date"},
}


def by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["type"], o["id"]): o for o in objects}


KIND_INDICES = {"check": "logs-edgewatch.check-default", "run": "edgewatch-runs-default",
                "event": "logs-edgewatch.event-default",
                "afterlife": "logs-edgewatch.afterlife-default"}


def index_kind(pattern: str) -> str:
    """Which documents an index pattern reaches (exactly one kind of them)."""
    kinds = [kind for kind, index in KIND_INDICES.items() if fnmatch.fnmatch(index, pattern)]
    assert len(kinds) == 1, f"index pattern {pattern!r} reaches {kinds or 'no'} documents"
    return kinds[0]


def test_committed_file_is_what_build_py_writes(build: Any, ndjson_text: str) -> None:
    assert ndjson_text == build.render(), "kibana/edgewatch.ndjson is stale: python kibana/build.py"


def test_every_line_is_a_saved_object(objects: list[dict[str, Any]], ndjson_text: str) -> None:
    assert len(objects) == len(ndjson_text.strip().splitlines())
    for obj in objects:
        assert set(obj) >= REQUIRED_KEYS, obj.get("id")
        assert obj["type"] in KNOWN_TYPES
        assert obj["attributes"]["title"].strip()
        assert obj["managed"] is False
        # Kibana refuses to import objects from a newer Kibana; ours declare 8.x shapes.
        assert int(obj["coreMigrationVersion"].split(".")[0]) <= 9


def test_ids_are_unique(objects: list[dict[str, Any]]) -> None:
    ids = [o["id"] for o in objects]
    assert len(ids) == len(set(ids))


def test_references_resolve_inside_the_file(objects: list[dict[str, Any]]) -> None:
    known = by_key(objects)
    for obj in objects:
        names = [r["name"] for r in obj["references"]]
        assert len(names) == len(set(names)), f"{obj['id']}: duplicate reference names"
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in known, f"{obj['id']} → {ref}"


def test_search_sources_parse_and_their_index_refs_exist(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        meta = obj["attributes"].get("kibanaSavedObjectMeta")
        if obj["type"] == "index-pattern":
            continue
        source = json.loads(meta["searchSourceJSON"])
        assert source["query"]["language"] in ("kuery", "lucene")
        assert isinstance(source["filter"], list)
        ref_name = source.get("indexRefName")
        if ref_name:
            refs = {r["name"]: r for r in obj["references"]}
            assert refs[ref_name]["type"] == "index-pattern"


def test_data_views(objects: list[dict[str, Any]], mapped_fields: dict[str, Any]) -> None:
    views = {o["attributes"]["title"]: o for o in objects if o["type"] == "index-pattern"}
    assert set(views) == {"logs-edgewatch.check-*", "edgewatch-runs-*", "logs-edgewatch.event-*",
                          "logs-edgewatch.afterlife-*"}
    assert {t: v["attributes"]["timeFieldName"] for t, v in views.items()} == {
        "logs-edgewatch.check-*": "@timestamp", "edgewatch-runs-*": "edgewatch.run.start",
        "logs-edgewatch.event-*": "@timestamp", "logs-edgewatch.afterlife-*": "@timestamp"}
    for title, view in views.items():
        attrs = view["attributes"]
        kind = index_kind(title)
        assert mapped_fields[kind][attrs["timeFieldName"]]["type"] == "date"
        for name in json.loads(attrs["fieldFormatMap"]):
            assert name in mapped_fields[kind], f"{title}: format for unknown field {name}"
        assert json.loads(attrs["runtimeFieldMap"]) == {}  # no painless on minimal nodes


def test_visualizations_parse(objects: list[dict[str, Any]]) -> None:
    vis = [o for o in objects if o["type"] == "visualization"]
    assert vis
    for obj in vis:
        state = json.loads(obj["attributes"]["visState"])
        assert state["title"] == obj["attributes"]["title"]
        assert json.loads(obj["attributes"]["uiStateJSON"]) == {}
        if state["type"] == "vega":
            spec = json.loads(state["params"]["spec"])  # JSON is valid HJSON
            assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v5")
            sources = data_sources(spec)
            assert sources, f"{obj['id']}: no Elasticsearch data source"
            for source in sources:
                assert source["format"]["property"].startswith("aggregations.")
                assert source["url"]["body"]["size"] == 0
        else:
            assert state["type"] == "markdown"
            assert state["params"]["markdown"].strip()


def test_vega_fields_exist_with_usable_types(
        objects: list[dict[str, Any]], doc_fields: dict[str, set[str]],
        mapped_fields: dict[str, dict[str, dict[str, Any]]]) -> None:
    checked = 0
    for vis_id, spec in vega_specs(objects).items():
        for source in data_sources(spec):
            kind = index_kind(source["url"]["index"])
            used = fields_used(source["url"])
            assert used, f"{vis_id}: no fields found (extraction broken?)"
            for how, name in used:
                assert name in doc_fields[kind], f"{vis_id}: {name} not in DOCUMENTS.md ({kind})"
                assert name in mapped_fields[kind], f"{vis_id}: {name} not mapped ({kind})"
                ftype = mapped_fields[kind][name]["type"]
                assert ftype != "text", f"{vis_id}: {how} on text field {name}"
                if how in ACCEPTS:
                    assert ftype in ACCEPTS[how], f"{vis_id}: {how} on {ftype} field {name}"
                checked += 1
    assert checked >= 20


SEARCHES = {  # id → (the kind of documents it reads, its query, a field its query needs)
    "edgewatch-failures": ("check", 'event.outcome : "failure"', "event.outcome"),
    "edgewatch-allowlist-misses": ("event", 'event.action : "allowlist-miss"', "event.action"),
    "edgewatch-afterlife-checks": ("afterlife", "", None),
}


def test_saved_searches(objects: list[dict[str, Any]], doc_fields: dict[str, set[str]],
                        mapped_fields: dict[str, Any]) -> None:
    """The failed checks, the allowlist misses and the checks of retired addresses: each over
    the data view of its documents, with columns those documents have (documented and mapped)."""
    searches = {o["id"]: o for o in objects if o["type"] == "search"}
    assert set(searches) == set(SEARCHES)
    views = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    for search_id, (kind, query, needs) in SEARCHES.items():
        attrs = searches[search_id]["attributes"]
        source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert source["query"] == {"query": query, "language": "kuery"}
        (ref,) = searches[search_id]["references"]
        assert index_kind(views[ref["id"]]) == kind, search_id
        used = [*attrs["columns"], *(s[0] for s in attrs["sort"]), *([needs] if needs else [])]
        for name in used:
            assert name in doc_fields[kind] and name in mapped_fields[kind], (search_id, name)


def _overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def resolve_panel_reference(panel: dict[str, Any],
                            references: list[dict[str, str]]) -> dict[str, str] | None:
    """Kibana 9's rule: references named ``<panelIndex>:<name>`` belong to that panel; a panel
    that has none of those looks its ``panelRefName`` up among all (unprefixed) references."""
    prefix = f"{panel['panelIndex']}:"
    own = [{**r, "name": r["name"][len(prefix):]} for r in references
           if r["name"].startswith(prefix)]
    for ref in own or references:
        if ref["name"] == panel["panelRefName"]:
            return ref
    return None


def test_dashboard_panels(objects: list[dict[str, Any]]) -> None:
    boards = [o for o in objects if o["type"] == "dashboard"]
    assert len(boards) == 1
    board = boards[0]
    attrs = board["attributes"]
    assert attrs["title"] == "edgewatch — can this API be allowlisted by IP?"
    assert json.loads(attrs["optionsJSON"])["useMargins"] is True
    panels = json.loads(attrs["panelsJSON"])
    known = by_key(objects)
    used_refs = set()
    for i, panel in enumerate(panels):
        grid = panel["gridData"]
        assert grid["i"] == panel["panelIndex"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 48 and grid["h"] > 0
        assert panel["panelRefName"] == f"panel_{i}"
        ref = resolve_panel_reference(panel, board["references"])
        assert ref is not None, f"panel {i}: no reference {panel['panelRefName']}"
        assert ref["type"] == panel["type"]
        assert (ref["type"], ref["id"]) in known
        used_refs.add(ref["name"])
    assert len({p["panelIndex"] for p in panels}) == len(panels)
    # the controls' data-view references (test_kibana_controls.py checks them)
    used_refs |= {r["name"] for r in board["references"] if r["name"].startswith("controlGroup_")}
    assert used_refs == {r["name"] for r in board["references"]}, "unused references"
    for a in range(len(panels)):
        for b in range(a + 1, len(panels)):
            assert not _overlap(panels[a]["gridData"], panels[b]["gridData"]), (a, b)
    # every visualization and the saved search is on the board
    on_board = {r["id"] for r in board["references"] if r["type"] != "index-pattern"}
    assert {o["id"] for o in objects if o["type"] in ("visualization", "search")} == on_board


def test_panel_reference_rule_accepts_both_spellings() -> None:
    panel = {"panelIndex": "7", "panelRefName": "panel_0"}
    assert resolve_panel_reference(panel, [{"name": "panel_0", "type": "t", "id": "a"}])
    assert resolve_panel_reference(panel, [{"name": "7:panel_0", "type": "t", "id": "a"}])
    assert resolve_panel_reference(panel, [{"name": "8:panel_0", "type": "t", "id": "a"}]) is None


def test_index_patterns_match_the_names_the_pipeline_writes(build: Any) -> None:
    from pipeline.es import names
    assert names.check_data_stream("*") == build.CHECKS_INDEX
    assert names.runs_index("*") == build.RUNS_INDEX


def test_time_series_break_at_empty_intervals(objects: list[dict[str, Any]]) -> None:
    """Every line over a date histogram (which keeps empty intervals, min_doc_count 0) breaks at
    the nulls of an empty interval instead of dropping them and joining its neighbours."""
    series = 0
    for vis_id, spec in vega_specs(objects).items():
        (source,) = data_sources(spec)
        aggs = source["url"]["body"]["aggs"]
        histogram = any("date_histogram" in str(a) for a in aggs.values())
        for view in [spec, *spec.get("layer", [])]:  # a layered chart: each layer's own mark
            mark = view.get("mark")
            if not histogram or not isinstance(mark, dict) or mark["type"] != "line":
                continue
            series += 1
            assert mark["invalid"] == "break-paths-show-domains", vis_id
            steps = spec.get("transform", []) + view.get("transform", [])
            dropped = [t for t in steps if "isValid" in str(t.get("filter", ""))]
            assert not dropped, vis_id
    # distinct addresses over time, timings over time, the allowlist coverage's two layers
    assert series >= 4
