"""The rules of the ECS test, shared by the tests that hold real documents against ECS 9.2.0.

``mapping_problems`` and ``document_problems`` return every departure from ECS's own field
definitions (the pinned extract in tests/data) as one line each; an empty list means none.
tests/pipeline/test_ecs.py explains the rules and shows each one catching a violation.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

from pipeline.documents import ECS_VERSION

ECS_FILE = Path(__file__).resolve().parents[1] / "data" / f"ecs-{ECS_VERSION}-fields.json"
ECS: dict[str, dict[str, Any]] = json.loads(ECS_FILE.read_text())["fields"]

# Heartbeat's timing fields: not ECS, documented in docs/DOCUMENTS.md as the only exceptions.
HEARTBEAT_PREFIXES = ("tcp.rtt.", "tls.rtt.", "resolve.", "http.rtt.")
KEYWORD_FAMILY = {"keyword", "constant_keyword", "wildcard"}
ALLOWED_CHECKED = ("event.kind", "event.category", "event.type", "event.outcome")


def _same_family(ecs_type: str, mapped: str) -> bool:
    if ecs_type in KEYWORD_FAMILY:
        return mapped in KEYWORD_FAMILY
    return ecs_type == mapped


def _outside_ecs_allowed(field: str) -> bool:
    return field.startswith("edgewatch.") or field.startswith(HEARTBEAT_PREFIXES)


def mapping_problems(properties: dict[str, Any], prefix: str = "") -> list[str]:
    """Every way a mapping departs from ECS (empty: none)."""
    problems = []
    for key, spec in properties.items():
        path = f"{prefix}{key}"
        ecs = ECS.get(path)
        if "properties" in spec and spec.get("type", "object") in ("object", "nested"):
            if ecs is not None and ecs["type"] == "object" and spec.get("type") == "nested":
                problems.append(f"{path}: mapped nested, ECS has an object")
            elif ecs is not None and ecs["type"] not in ("object", "nested"):
                problems.append(f"{path}: an object here, ECS has type {ecs['type']}")
            problems += mapping_problems(spec["properties"], f"{path}.")
            continue
        mapped = spec.get("type", "object")
        if ecs is None:
            if not _outside_ecs_allowed(path):
                problems.append(f"{path}: not an ECS field and not under edgewatch.*")
        elif not _same_family(ecs["type"], mapped):
            problems.append(f"{path}: mapped {mapped}, ECS {ECS_VERSION} says {ecs['type']}")
    return problems


def flatten(doc: dict[str, Any]) -> dict[str, list[Any]]:
    """Field → its values, the objects of an array (``dns.answers``) opened into subfields."""
    out: dict[str, list[Any]] = {}
    for key, value in doc.items():
        values = value if isinstance(value, list) else [value]
        out.setdefault(key, []).extend(values)
        for v in values:
            if isinstance(v, dict):
                for sub, subvalues in flatten(v).items():
                    out.setdefault(f"{key}.{sub}", []).extend(subvalues)
    return out


_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _shape_ok(ecs_type: str, value: Any) -> bool:
    if ecs_type in KEYWORD_FAMILY or ecs_type in ("match_only_text", "text"):
        return isinstance(value, str)
    if ecs_type == "long":
        return isinstance(value, int) and not isinstance(value, bool)
    if ecs_type == "boolean":
        return isinstance(value, bool)
    if ecs_type == "date":
        return isinstance(value, str) and bool(_DATE.fullmatch(value))
    if ecs_type == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
        return True
    if ecs_type == "object":
        return isinstance(value, dict)
    return True


def document_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    for field, values in flatten(doc).items():
        if field in ("_id", "@timestamp") and field not in ECS:
            continue
        ecs = ECS.get(field)
        if ecs is None:
            container = any(isinstance(v, dict) for v in values)
            if not container and not _outside_ecs_allowed(field):
                problems.append(f"{field}: not an ECS field and not under edgewatch.*")
            continue
        if field in ALLOWED_CHECKED or "allowed_values" in ecs:
            bad = [v for v in values if v not in ecs.get("allowed_values", [])]
            if bad:
                problems.append(f"{field}: {bad} not among ECS's allowed values")
        if ("array" in ecs.get("normalize", []) and field in doc
                and not isinstance(doc[field], list)):
            problems.append(f"{field}: ECS normalises it to an array, written as a scalar")
        wrong = [v for v in values if not _shape_ok(ecs["type"], v)]
        if wrong:
            problems.append(f"{field}: {wrong[:3]} is not a {ecs['type']} value")
    return problems
