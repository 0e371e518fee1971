"""Shared by the Kibana tests: the shipped saved objects, their generator, and the field lists.

Fields are checked against two sources that must agree with each other anyway: the document
schema in docs/DOCUMENTS.md and the explicit mappings in mappings/ (what Elasticsearch will
actually have). A panel naming a field that is in neither would chart nothing, silently.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pipeline.es import names, templates

ROOT = Path(__file__).resolve().parents[2]
NDJSON = ROOT / "kibana" / "edgewatch.ndjson"
BUILD = ROOT / "kibana" / "build.py"
DOCUMENTS_MD = ROOT / "docs" / "DOCUMENTS.md"


def load_build() -> ModuleType:
    """kibana/build.py is a script, not part of a package: load it from its path."""
    spec = importlib.util.spec_from_file_location("edgewatch_kibana_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


HEADINGS = {"check document": "check", "run summary": "run", "event document": "event",
            "afterlife document": "afterlife"}


def documented_fields(text: str) -> dict[str, set[str]]:
    """``{"check": {...}, "run": {...}, "event": …, "afterlife": …}``: the backticked names in
    the first column of the field tables under each document's heading of DOCUMENTS.md. An
    afterlife document's connect fields are the check document's (DOCUMENTS.md says so in
    prose, not in its table): those the afterlife mapping has count as documented there."""
    out: dict[str, set[str]] = {kind: set() for kind in HEADINGS.values()}
    section: str | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line.lower()
            section = next((kind for title, kind in HEADINGS.items() if title in heading), None)
            continue
        if section and line.startswith("|") and not line.startswith("|---"):
            first = line.split("|")[1]
            out[section].update(re.findall(r"`([^`]+)`", first))
    return out


@pytest.fixture(scope="session")
def build() -> ModuleType:
    return load_build()


@pytest.fixture(scope="session")
def ndjson_text() -> str:
    return NDJSON.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def objects(ndjson_text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ndjson_text.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def doc_fields() -> dict[str, set[str]]:
    fields = documented_fields(DOCUMENTS_MD.read_text(encoding="utf-8"))
    # The parse itself must have worked, or every field check below would be vacuous.
    assert {"@timestamp", "destination.ip", "error.type", "tls.rtt.handshake.us"} <= fields["check"]
    assert {"edgewatch.run.duration.s", "edgewatch.run.open", "destination.ip",
            "edgewatch.run.last_seen"} <= fields["run"]
    assert {"event.action", "edgewatch.allowlist.denied", "message"} <= fields["event"]
    assert {"edgewatch.afterlife.age.s", "edgewatch.run.end"} <= fields["afterlife"]
    afterlife_mapped = templates.leaf_fields(
        templates.effective_mappings(names.AFTERLIFE_INDEX_TEMPLATE)["properties"])
    fields["afterlife"] |= fields["check"] & set(afterlife_mapped)
    return fields


@pytest.fixture(scope="session")
def mapped_fields() -> dict[str, dict[str, dict[str, Any]]]:
    """``{"check"|"run"|"event"|"afterlife": {field: {"type": ...}}}`` from the index
    templates in mappings/."""
    out = {
        "check": templates.leaf_fields(
            templates.effective_mappings(names.CHECK_INDEX_TEMPLATE)["properties"]),
        "run": templates.leaf_fields(
            templates.effective_mappings(names.RUNS_INDEX_TEMPLATE)["properties"]),
        "event": templates.leaf_fields(
            templates.effective_mappings(names.EVENT_INDEX_TEMPLATE)["properties"]),
        "afterlife": templates.leaf_fields(
            templates.effective_mappings(names.AFTERLIFE_INDEX_TEMPLATE)["properties"]),
    }
    assert out["check"]["destination.ip"]["type"] == "ip"
    assert out["run"]["edgewatch.run.duration.s"]["type"] == "long"
    return out
