"""Fixtures for the Elasticsearch delivery tests: settings for one namespace, installed setup.

Each test gets its own namespace (so its own data stream and runs index) on the session's real
node. Data streams cannot be deleted on the devstack node (no data stream API); they vanish with
the session's node folder.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch, helpers

from pipeline.commands.setup import setup
from pipeline.config import ElasticsearchSettings
from pipeline.es import names


def settings_for(url: str, namespace: str, tmp: Path, **overrides: object) -> ElasticsearchSettings:
    values: dict[str, object] = {
        "url": url, "namespace": namespace, "spool_dir": tmp / "spool",
        "dead_letter_dir": tmp / "dead-letter", "flush_interval_s": 0.05,
        "bulk_max_docs": 200, "request_timeout": 10.0,
    }
    values.update(overrides)
    return ElasticsearchSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def es_settings(es_url: str, es_namespace: str, tmp_path: Path) -> ElasticsearchSettings:
    return settings_for(es_url, es_namespace, tmp_path)


@pytest.fixture
def installed(es: Elasticsearch, es_settings: ElasticsearchSettings
              ) -> Iterator[ElasticsearchSettings]:
    """Setup has run for the test's namespace; its runs index is removed afterwards."""
    setup(es_settings, out=io.StringIO())
    yield es_settings
    es.options(ignore_status=404).indices.delete(index=names.runs_index(es_settings.namespace))


def stored_ids(es: Elasticsearch, index: str) -> list[str]:
    """Every ``_id`` stored under ``index`` (a data stream: all its backing indices), with
    repetitions, so a duplicate shows up as a repeated id."""
    es.indices.refresh(index=index)
    return [hit["_id"] for hit in helpers.scan(es, index=index, query={"query": {"match_all": {}}},
                                               _source=False, size=1000)]
