"""The Kibana objects read the indices edgewatch writes: one spelling, in pipeline/es/names.py."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pipeline import documents
from pipeline.es import names, templates


def test_index_patterns_are_the_templates_patterns() -> None:
    """What the data views read is exactly what the shipped index templates match."""
    for template, pattern in ((names.CHECK_INDEX_TEMPLATE, names.CHECKS_INDEX_PATTERN),
                              (names.RUNS_INDEX_TEMPLATE, names.RUNS_INDEX_PATTERN),
                              (names.EVENT_INDEX_TEMPLATE, names.EVENTS_INDEX_PATTERN),
                              (names.AFTERLIFE_INDEX_TEMPLATE, names.AFTERLIFE_INDEX_PATTERN)):
        body = templates.load(f"index_templates/{template}.json")
        assert body["index_patterns"] == [pattern]
    assert names.check_data_stream("ns").startswith(names.CHECKS_INDEX_PATTERN[:-1])
    assert names.runs_index("ns").startswith(names.RUNS_INDEX_PATTERN[:-1])


def test_builder_and_shipped_objects_use_names(build: ModuleType,
                                               objects: list[dict[str, Any]]) -> None:
    assert (build.CHECKS_INDEX, build.RUNS_INDEX, build.EVENTS_INDEX, build.AFTERLIFE_INDEX) == (
        names.CHECKS_INDEX_PATTERN, names.RUNS_INDEX_PATTERN, names.EVENTS_INDEX_PATTERN,
        names.AFTERLIFE_INDEX_PATTERN)
    titles = {o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    assert titles == {names.CHECKS_INDEX_PATTERN, names.RUNS_INDEX_PATTERN,
                      names.EVENTS_INDEX_PATTERN, names.AFTERLIFE_INDEX_PATTERN}


def test_documents_datasets_are_the_names() -> None:
    assert (documents.CHECK_DATASET, documents.RUN_DATASET) == (names.CHECK_DATASET,
                                                                names.RUN_DATASET)
