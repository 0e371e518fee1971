"""A store written as schema 1 still reports, says so in one line, and converts in place.

The schema-1 store is the synthetic history written with schema 1's names (the table in
docs/DOCUMENTS.md, read backwards by ``to_schema1``): the report on it must give the very figures
of the schema-2 store, ``edgewatch migrate-store`` must rewrite it into documents that pass the
ECS test, and a cluster holding schema-1 documents is named in one warning line.
"""

from __future__ import annotations

import io
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from elasticsearch import Elasticsearch

from pipeline.cli import main
from pipeline.commands.setup import setup
from pipeline.config import ElasticsearchSettings
from pipeline.es import names
from pipeline.report import ElasticsearchSource, Filters, Options, StoreSource, build_report
from pipeline.report.render import render_json
from pipeline.schema1 import RENAMED, upgrade

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from ecs_rules import document_problems

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SELECTED = Filters(targets=("api.example.test",), observers=("probe-1",))
_NEW_ONLY = ("ecs.version", "data_stream.type", "data_stream.dataset", "data_stream.namespace",
             "event.category", "event.type", "dns.type", "dns.answers", "tls.version_protocol")
_BACK = {new: old for old, new in RENAMED.items()}


def to_schema1(doc: dict[str, Any]) -> dict[str, Any]:
    """What edgewatch wrote before schema 2 for the same measurement."""
    out = {_BACK.get(k, k): v for k, v in doc.items() if k not in _NEW_ONLY}
    out["edgewatch.schema"] = 1
    return out


def _schema1_store(store_dir: Path, target: Path) -> Path:
    target.mkdir()
    for path in store_dir.glob("*.ndjson"):
        lines = [orjson.dumps(to_schema1(orjson.loads(line)))
                 for line in path.read_bytes().splitlines() if line.strip()]
        (target / path.name).write_bytes(b"\n".join(lines) + b"\n")
    return target


def _figures(source: StoreSource) -> str:
    """The whole JSON report, with the store's own path (its only difference) taken out."""
    report = json.loads(render_json(build_report(source, SELECTED, Options(now=NOW))))
    report.pop("generated_at")  # the wall-clock time of rendering
    return json.dumps(report).replace(str(source.store_dir), "STORE")


def test_a_schema1_store_gives_the_same_figures_and_one_warning(
        store_dir: Path, tmp_path: Path) -> None:
    old = _schema1_store(store_dir, tmp_path / "old")
    first = next(iter(sorted(old.glob("checks-*"))))
    assert b'"resolver.name"' in first.read_bytes()  # truly the old names
    source = StoreSource(old)
    assert _figures(source) == _figures(StoreSource(store_dir))
    warnings = source.warnings()
    assert len(warnings) == 1 and "schema-1 lines" in warnings[0], warnings
    assert f"edgewatch migrate-store {old}" in warnings[0]


def test_migrate_store_rewrites_schema1_lines_as_schema2_once(
        store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _schema1_store(store_dir, tmp_path / "old")
    total = sum(len(p.read_bytes().splitlines()) for p in old.glob("*.ndjson"))
    assert main(["migrate-store", "--store", str(old)]) == 0
    assert f"{total:,} schema-1 lines converted" in capsys.readouterr().out
    docs = [orjson.loads(line) for p in sorted(old.glob("*.ndjson"))
            for line in p.read_bytes().splitlines()]
    assert len(docs) == total and all(d["edgewatch.schema"] == 2 for d in docs)
    assert all(document_problems(d) == [] for d in docs)
    source = StoreSource(old)
    assert _figures(source) == _figures(StoreSource(store_dir)) and source.warnings() == []
    assert main(["migrate-store", "--store", str(old)]) == 0  # nothing left to convert
    assert "0 schema-1 lines converted to schema 2 in 0 file(s)" in capsys.readouterr().out


def test_upgrade_restores_ecs_values_of_the_old_document() -> None:
    old = {"@timestamp": "2026-03-02T00:00:05.000Z", "event.kind": "event",
           "event.dataset": "edgewatch.check", "edgewatch.schema": 1, "resolver.name": "r1",
           "tcp.established": True, "tls.verified": True, "tls.version": "TLSv1.2",
           "tls.server.hash.sha256": "ab" * 32, "tls.server.x509.subject.common_name": "a.test",
           "dns.rtt.us": 800, "http.rtt.total.us": 1500, "run.id": "r", "_id": "x"}
    new = upgrade(old, namespace="prod")
    assert (new["tls.version"], new["tls.version_protocol"]) == ("1.2", "tls")
    assert new["tls.server.hash.sha256"] == "AB" * 32
    assert new["tls.server.x509.subject.common_name"] == ["a.test"]
    assert (new["resolve.rtt.us"], new["http.rtt.response_header.us"]) == (800, 1500)
    assert new["event.type"] == ["connection"] and new["data_stream.namespace"] == "prod"
    assert new["edgewatch.resolver.name"] == "r1" and new["edgewatch.run.id"] == "r"
    assert document_problems(new) == []


def test_a_missing_store_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate-store", "--store", str(tmp_path / "absent")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"edgewatch migrate-store: no ndjson store at {tmp_path / 'absent'}"]


@pytest.mark.integration
def test_a_cluster_holding_schema1_documents_is_named_in_one_warning(
        es: Elasticsearch, es_url: str, tmp_path: Path) -> None:
    ns = f"schema1{uuid.uuid4().hex[:8]}"
    settings = ElasticsearchSettings(url=es_url, namespace=ns, spool_dir=tmp_path / "spool",
                                     dead_letter_dir=tmp_path / "dead")
    setup(settings, out=io.StringIO())
    runs = names.runs_index(ns)
    source = ElasticsearchSource(es, namespace=ns)
    assert source.warnings() == []
    # edgewatch.schema is mapped in both schemas: a schema-1 run summary is found by it
    es.index(index=runs, id="old-run", refresh=True, document={
        "@timestamp": "2026-03-02T00:00:00.000Z", "event.kind": "state",
        "event.dataset": "edgewatch.run", "edgewatch.schema": 1})
    warnings = source.warnings()
    assert len(warnings) == 1 and f"1 in {runs}" in warnings[0], warnings
    assert "schema-1 documents" in warnings[0]
    es.options(ignore_status=404).indices.delete(index=runs)
