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
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from devstack.node import Node, start_node

pytest_plugins = ["daemon_guard"]  # tests/daemon_guard.py: -m "not integration" starts no daemon


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


# --- the integration marker, from the fixtures a test uses -------------------------------------

# A test that uses any of these talks to the session's Elasticsearch node (or a namespace on it).
ES_FIXTURES = frozenset({"es_node", "es_url", "es", "es_namespace", "es_settings", "installed",
                         "report_namespace", "es_source"})
# Parametrized fixtures whose named parameter reaches a fixture above through
# request.getfixturevalue, which pytest cannot see when it collects.
ES_PARAMS = frozenset({("source", "elasticsearch")})


def _is_lab_fixture(fixturedefs: tuple[pytest.FixtureDef[Any], ...]) -> bool:
    """Made by ``lab.testing.lab_fixture``, whatever name the test module gave it."""
    return any(getattr(d.func, "__qualname__", "").startswith("lab_fixture.") for d in fixturedefs)


def needs_services(item: pytest.Item) -> bool:
    """The test uses the Elasticsearch node or a running lab through its fixtures."""
    names = set(getattr(item, "fixturenames", ()))
    if names & ES_FIXTURES:
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    if any(params.get(name) == value for name, value in ES_PARAMS):
        return True
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs if info is not None else {}
    return any(_is_lab_fixture(defs[n]) for n in names if n in defs)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs a service ``integration``, so ``-m "not integration"`` runs
    without starting a JVM or a resolver. Tests that start one themselves (subprocesses, their
    own LabStack) are marked in their module or their folder's conftest; the daemon guard below
    catches one that is not."""
    for item in items:
        if needs_services(item):
            item.add_marker(pytest.mark.integration)
