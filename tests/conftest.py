"""Shared fixtures: a real Elasticsearch node for the whole session.

Integration tests never mock Elasticsearch. When ``ES_URL`` is set the tests use that cluster;
otherwise the devstack node is started once per session. If it cannot start, every test that
needs it errors with the reason — nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from devstack.node import Node, start_node


@pytest.fixture(scope="session")
def es_node() -> Iterator[Node | None]:
    if os.environ.get("ES_URL"):
        yield None
        return
    run_dir = Path(tempfile.mkdtemp(prefix="edgewatch-test-es-"))
    # raises DevstackError: tests error, never skip; the node dies with this process
    node = start_node(run_dir=run_dir, die_with_parent=True)
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def es_url(es_node: Node | None) -> str:
    return os.environ["ES_URL"] if es_node is None else es_node.url


@pytest.fixture(scope="session")
def es(es_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(es_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def es_namespace(es: Elasticsearch) -> Iterator[str]:
    """A name prefix owned by one test; its indices and templates are removed afterwards."""
    ns = f"t{uuid.uuid4().hex[:10]}"
    yield ns
    es.options(ignore_status=404).indices.delete(index=f"{ns}*", expand_wildcards="all")
    es.options(ignore_status=404).indices.delete_index_template(name=f"{ns}*")
