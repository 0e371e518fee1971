"""The dashboard's controls: options lists on the fields check documents and runs share.

A control's selection becomes an ordinary filter of the dashboard, and Kibana hands a Vega
panel's query the dashboard's filters whole, whatever index the panel reads. A control on a
check-only field (``event.outcome``, ``error.type``, ``tls.*``) would therefore empty every run
panel the moment something is picked; so the controls offer only fields that the check data
stream and the runs index both map with the same meaning (docs/DOCUMENTS.md, "Run summary":
target, resolver, observer, address family). Their suggestions come from the checks data view,
which sees every target, resolver and observer that ever answered.

The saved shape is the one Kibana 9.2 stores in a dashboard's ``controlGroupInput`` (dashboard
attribute schema v1/v2: ``panelsJSON``, ``controlStyle``, ``chainingSystem``,
``ignoreParentSettingsJSON``, ``showApplySelections``), with one data-view reference per control
named ``controlGroup_<control id>:optionsListDataView``, the name Kibana's reference injection
looks for (and the first of the names later releases still accept).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vega_common import CHECKS_DATA_VIEW_ID, QUESTION_TYPE, RESOLVER_NAME

OPTIONS_LIST = "optionsListControl"
REFERENCE_NAME = "optionsListDataView"


@dataclass(frozen=True)
class Control:
    """One options-list control: its stable id, the field it filters and its label."""

    id: str
    field: str
    title: str
    width: str = "medium"


CONTROLS = [
    Control("edgewatch-control-target", "dns.question.name", "target"),
    Control("edgewatch-control-resolver", RESOLVER_NAME, "resolver"),
    Control("edgewatch-control-observer", "observer.name", "observer"),
    Control("edgewatch-control-family", QUESTION_TYPE, "family (A / AAAA)", "small"),
]


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def control_group_input(controls: list[Control] | None = None) -> dict[str, Any]:
    """The ``controlGroupInput`` attribute: one line of controls, each narrowing the next."""
    panels = {}
    for order, c in enumerate(controls or CONTROLS):
        panels[c.id] = {
            "type": OPTIONS_LIST,
            "order": order,
            "grow": True,
            "width": c.width,
            "explicitInput": {
                "id": c.id,  # Kibana finds a control's references by this id
                "dataViewId": CHECKS_DATA_VIEW_ID,
                "fieldName": c.field,
                "title": c.title,
                "selectedOptions": [],
                "singleSelect": False,
                "exclude": False,
                "existsSelected": False,
                "searchTechnique": "prefix",
                "sort": {"by": "_count", "direction": "desc"},
                "enhancements": {},
            },
        }
    return {
        "controlStyle": "oneLine",
        "chainingSystem": "HIERARCHICAL",
        "showApplySelections": False,
        # The controls follow the dashboard's filters, query and time range, like the panels.
        "ignoreParentSettingsJSON": _compact({"ignoreFilters": False, "ignoreQuery": False,
                                              "ignoreTimerange": False,
                                              "ignoreValidations": False}),
        "panelsJSON": _compact(panels),
    }


def control_references(controls: list[Control] | None = None) -> list[dict[str, str]]:
    """The data-view reference of each control, named the way Kibana injects it back."""
    return [{"name": f"controlGroup_{c.id}:{REFERENCE_NAME}", "type": "index-pattern",
             "id": CHECKS_DATA_VIEW_ID} for c in controls or CONTROLS]
