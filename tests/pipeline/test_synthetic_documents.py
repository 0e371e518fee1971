"""The synthetic histories of the Elasticsearch and report tests are production-shaped.

``tests/es/docgen.py`` and ``tests/report/report_synth.py`` build their run summaries with
``pipeline.documents.run_record`` and take ``Run.version`` from ``pipeline.runs``; this checks,
without a node, that what they generate passes the same ECS rules and names only mapped fields,
so a test that indexes them exercises documents production could write.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ecs_rules import document_problems

from pipeline.es import names, templates

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "report"))

from es.docgen import START, check_records, run_record  # noqa: E402
from report_synth import History  # noqa: E402


def _mapped(template: str) -> set[str]:
    return set(templates.leaf_fields(templates.effective_mappings(template)["properties"]))


def _unmapped(doc: dict[str, Any], mapped: set[str]) -> set[str]:
    """Top-level keys that are neither a mapped leaf nor an object (``dns.answers``) of them."""
    return {k for k in doc if k != "_id" and k not in mapped
            and not any(m.startswith(f"{k}.") for m in mapped)}


@pytest.fixture(scope="module")
def history() -> History:
    return History.build()


def test_docgen_documents_follow_ecs_and_the_mappings() -> None:
    checks, runs = _mapped(names.CHECK_INDEX_TEMPLATE), _mapped(names.RUNS_INDEX_TEMPLATE)
    for record in check_records(200):
        assert document_problems(record.doc) == [], record.doc
        assert _unmapped(record.doc, checks) == set()
    t = START + timedelta(minutes=30)
    for record in (run_record("r1", 2, start=START, last_seen=t, checks=2),
                   run_record("r2", 4, start=START, last_seen=t, checks=2, gaps=1, end=t)):
        assert record.version == record.doc["edgewatch.run.version"]
        assert document_problems(record.doc) == [], record.doc
        assert _unmapped(record.doc, runs) == set()


def test_docgen_refuses_a_version_production_would_not_derive() -> None:
    with pytest.raises(ValueError, match="production derives 3"):
        run_record("r1", 2, start=START, last_seen=START, checks=3)


def test_report_history_documents_follow_ecs_and_the_mappings(history: History) -> None:
    checks, runs = _mapped(names.CHECK_INDEX_TEMPLATE), _mapped(names.RUNS_INDEX_TEMPLATE)
    for doc in history.checks[:500]:
        assert _unmapped(doc, checks) == set()
    assert history.run_snapshots
    for _, doc in history.run_snapshots:
        assert document_problems(doc) == [], doc
        assert _unmapped(doc, runs) == set()
    for run in history.runs.values():
        assert run.doc()["edgewatch.run.version"] == run.version == run.production().version
