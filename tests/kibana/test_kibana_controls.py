"""The dashboard's controls, checked against Kibana 9.2's saved shape and edgewatch's schema.

Kibana 9.2 validates a dashboard's attributes with its dashboard saved-object schema (v1
forbids unknown attributes; ``controlGroupInput`` may hold ``panelsJSON``, ``controlStyle``,
``chainingSystem``, ``ignoreParentSettingsJSON`` — strings — and, from v2, the boolean
``showApplySelections``), and finds a control's data view through the dashboard reference
``controlGroup_<explicitInput.id>:optionsListDataView``. Those rules are restated here, since no
Kibana runs in the tests. The edgewatch rule on top: a control filters the whole dashboard, the
run panels included, so its field must be one that check documents and run summaries both have
(documented for both in docs/DOCUMENTS.md, mapped alike in mappings/).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from kibana_vega import KibanaContext, dashboard_query, vega_specs
from panel_documents import WINDOW, Indices, installed_indices, load_documents, run_panel

# Kibana 9.2, dashboard saved-object schema v1 (unknowns: forbid) and v2's controlGroupInput.
DASHBOARD_ATTRIBUTES = {"title", "description", "kibanaSavedObjectMeta", "timeRestore",
                        "timeFrom", "timeTo", "refreshInterval", "controlGroupInput",
                        "panelsJSON", "optionsJSON", "hits", "version"}
CONTROL_GROUP_STRINGS = {"panelsJSON", "controlStyle", "chainingSystem",
                         "ignoreParentSettingsJSON"}
CONTROL_GROUP_BOOLEANS = {"showApplySelections"}
CONTROL_STYLES = {"oneLine", "twoLine"}
CHAINING = {"HIERARCHICAL", "NONE"}
WIDTHS = {"small", "medium", "large"}
IGNORE_PARENT_KEYS = {"ignoreFilters", "ignoreQuery", "ignoreTimerange", "ignoreValidations"}
# Fields the controls must offer (issue 14): target, resolver, observer.
REQUIRED_FIELDS = {"dns.question.name", "edgewatch.resolver.name", "observer.name"}


def dashboard(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (board,) = [o for o in objects if o["type"] == "dashboard"]
    return board


def controls(board: dict[str, Any]) -> dict[str, Any]:
    return json.loads(board["attributes"]["controlGroupInput"]["panelsJSON"])


def test_dashboard_attributes_fit_kibanas_schema(objects: list[dict[str, Any]]) -> None:
    attrs = dashboard(objects)["attributes"]
    assert set(attrs) <= DASHBOARD_ATTRIBUTES, set(attrs) - DASHBOARD_ATTRIBUTES
    group = attrs["controlGroupInput"]
    assert set(group) <= CONTROL_GROUP_STRINGS | CONTROL_GROUP_BOOLEANS
    for key in CONTROL_GROUP_STRINGS & set(group):
        assert isinstance(group[key], str), key
    for key in CONTROL_GROUP_BOOLEANS & set(group):
        assert isinstance(group[key], bool), key
    assert group["controlStyle"] in CONTROL_STYLES
    assert group["chainingSystem"] in CHAINING
    ignore = json.loads(group["ignoreParentSettingsJSON"])
    assert set(ignore) == IGNORE_PARENT_KEYS
    # the controls follow the dashboard like the panels do
    assert not any(ignore.values())


def test_each_control_is_an_options_list_with_its_data_view(
        objects: list[dict[str, Any]]) -> None:
    board = dashboard(objects)
    panels = controls(board)
    assert len(panels) >= len(REQUIRED_FIELDS)
    assert sorted(p["order"] for p in panels.values()) == list(range(len(panels)))
    refs = {r["name"]: r for r in board["references"]}
    data_views = {o["id"] for o in objects if o["type"] == "index-pattern"}
    for control_id, panel in panels.items():
        assert panel["type"] == "optionsListControl"
        assert panel["width"] in WIDTHS and isinstance(panel["grow"], bool)
        given = panel["explicitInput"]
        # Kibana strips "controlGroup_" and then "<explicitInput.id>:" from reference names
        assert given["id"] == control_id
        ref = refs[f"controlGroup_{control_id}:optionsListDataView"]
        assert ref["type"] == "index-pattern" and ref["id"] in data_views
        assert given["dataViewId"] == ref["id"]
        assert given["selectedOptions"] == [] and given["title"]
    control_refs = [n for n in refs if n.startswith("controlGroup_")]
    assert len(control_refs) == len(panels)


def test_controls_filter_only_on_fields_checks_and_runs_share(
        objects: list[dict[str, Any]], doc_fields: dict[str, set[str]],
        mapped_fields: dict[str, dict[str, dict[str, Any]]]) -> None:
    fields = {p["explicitInput"]["fieldName"] for p in controls(dashboard(objects)).values()}
    assert fields >= REQUIRED_FIELDS
    for name in fields:
        assert name in doc_fields["check"] and name in doc_fields["run"], name
        check_type = mapped_fields["check"][name]["type"]
        assert check_type == mapped_fields["run"][name]["type"] == "keyword", name
    # and the check-only fields that empty run panels are not among them
    assert not fields & {"event.outcome", "error.type", "tls.version"}


# --- on the test node: what a selection in each control does to the panels -------------------

RUN_PANELS = ["edgewatch-run-length-distribution", "edgewatch-most-stable-ips"]


def selection_filter(field: str, values: list[str]) -> dict[str, Any]:
    """The filter an options-list control adds for its selection (Kibana's phrase filter for
    one value, a bool should of phrases for several)."""
    if len(values) == 1:
        return {"match_phrase": {field: values[0]}}
    return {"bool": {"should": [{"match_phrase": {field: v}} for v in values],
                     "minimum_should_match": 1}}


@pytest.fixture(scope="module")
def indices(es: Elasticsearch, es_url: str) -> Iterator[Indices]:
    with installed_indices(es, es_url, prefix="ctl") as made:
        load_documents(es, made)
        yield made


def picked(ctx_filter: dict[str, Any]) -> KibanaContext:
    return KibanaContext(WINDOW.time_min, WINDOW.time_max, dashboard_query([ctx_filter]))


def run_count(rows: list[dict[str, Any]]) -> int:
    return sum(r["doc_count"] for r in rows)


def test_a_selection_in_any_control_keeps_the_run_panels(
        es: Elasticsearch, objects: list[dict[str, Any]], indices: Indices) -> None:
    """Pick the first value of each control (as its list offers it, from the checks): the run
    panels keep exactly the runs with that value, and the check panels the checks."""
    for panel in controls(dashboard(objects)).values():
        field_name = panel["explicitInput"]["fieldName"]
        offered = es.search(index=indices.checks, size=0, aggs={
            "v": {"terms": {"field": field_name, "size": 1}}}).body
        value = offered["aggregations"]["v"]["buckets"][0]["key"]
        runs_with = es.count(index=indices.runs, query={"bool": {"filter": [
            {"term": {field_name: value}},
            {"range": {"edgewatch.run.start": {"lte": WINDOW.time_max.isoformat()}}},
            {"range": {"edgewatch.run.last_seen": {"gte": WINDOW.time_min.isoformat()}}}]}})
        assert runs_with["count"] > 0, (field_name, value)
        ctx = picked(selection_filter(field_name, [value]))
        rows, _ = run_panel(es, objects, indices, "edgewatch-run-length-distribution", ctx)
        assert run_count(rows) == runs_with["count"], field_name
        rows, _ = run_panel(es, objects, indices, "edgewatch-most-stable-ips", ctx)
        assert rows, field_name
        rows, _ = run_panel(es, objects, indices, "edgewatch-unique-ips-per-resolver", ctx)
        assert rows, field_name


def test_a_check_only_filter_empties_the_run_panels_as_their_subtitle_says(
        es: Elasticsearch, objects: list[dict[str, Any]], indices: Indices) -> None:
    """Why the controls stop at shared fields: event.outcome is on checks only."""
    ctx = picked(selection_filter("event.outcome", ["success"]))
    for vis_id in RUN_PANELS:
        rows, _ = run_panel(es, objects, indices, vis_id, ctx)
        assert run_count(rows) == 0, vis_id
        spec = vega_specs(objects)[vis_id]
        assert "event.outcome" in " ".join(spec["title"]["subtitle"])
    rows, _ = run_panel(es, objects, indices, "edgewatch-unique-ips-per-resolver", ctx)
    assert rows  # the check panels still answer
