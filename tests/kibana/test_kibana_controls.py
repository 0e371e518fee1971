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
from typing import Any

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
