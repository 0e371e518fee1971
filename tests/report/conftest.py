"""Fixtures for the report tests: one synthetic history, stored twice.

The history is written as an ndjson store and indexed into the session's real Elasticsearch
node (after ``edgewatch setup`` for a namespace of its own, so the strict production mappings
check every field). ``source`` runs a test against both, which is how the report proves it
gives the same figures whichever store it reads.
"""

from __future__ import annotations

import io
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

sys.path.insert(0, str(Path(__file__).parent))

from report_synth import History

from pipeline.commands.setup import setup
from pipeline.config import ElasticsearchSettings
from pipeline.es import names
from pipeline.report import ElasticsearchSource, StoreSource


@pytest.fixture(scope="session")
def history() -> History:
    return History.build()


@pytest.fixture(scope="session")
def store_dir(history: History, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report-store")
    history.write_store(path)
    return path


@pytest.fixture(scope="session")
def report_namespace(es: Elasticsearch, es_url: str, history: History,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A namespace set up like production and holding the history (data stream + runs index).

    Data streams cannot be deleted on the devstack node; they go with the session's node."""
    ns = f"report{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("report-es")
    settings = ElasticsearchSettings(url=es_url, namespace=ns, spool_dir=tmp / "spool",
                                     dead_letter_dir=tmp / "dead")
    setup(settings, out=io.StringIO())
    history.index(es, names.check_data_stream(ns), names.runs_index(ns))
    yield ns
    es.options(ignore_status=404).indices.delete(index=names.runs_index(ns))


@pytest.fixture
def store_source(store_dir: Path) -> StoreSource:
    return StoreSource(store_dir)


@pytest.fixture
def es_source(es: Elasticsearch, report_namespace: str) -> ElasticsearchSource:
    # A small page size so that composite paging (after_key) is exercised on this small history.
    return ElasticsearchSource(es, namespace=report_namespace, page_size=7)


@pytest.fixture(params=["store", "elasticsearch"])
def source(request: pytest.FixtureRequest):
    """Each test using this runs once per evidence source."""
    name = "store_source" if request.param == "store" else "es_source"
    return request.getfixturevalue(name)
