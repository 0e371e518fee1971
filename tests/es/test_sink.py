"""The Elasticsearch sink against the real node: queries work, replays and stale versions are
harmless, refused documents are dead-lettered with their reason, nothing waits unseen."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from elasticsearch import Elasticsearch

from pipeline.config import ElasticsearchSettings
from pipeline.documents import Record
from pipeline.es import names
from pipeline.sinks.base import Sink
from pipeline.sinks.elasticsearch import ElasticsearchSink
from pipeline.sinks.spool import opened

from .conftest import settings_for, stored_ids
from .docgen import START, check_records, run_record

pytestmark = pytest.mark.integration


async def deliver(settings: ElasticsearchSettings, *batches: list[Record]) -> ElasticsearchSink:
    sink = ElasticsearchSink(settings)
    assert isinstance(sink, Sink)
    await sink.open()
    try:
        for batch in batches:
            await sink.write(batch)
        await sink.flush()
    finally:
        await sink.close()
    return sink


def spool_pending(directory: Path) -> int:
    with opened(directory) as spool:
        return spool.pending_entries


async def test_checks_are_queryable_by_cidr_and_aggregatable_by_resolver(
    es: Elasticsearch, installed: ElasticsearchSettings
) -> None:
    records = check_records(1200)
    sink = await deliver(installed, *(records[i:i + 150] for i in range(0, 1200, 150)))
    assert sink.stats.delivered == 1200 and sink.stats.dead_lettered == 0
    assert sink.stats.bulk_requests >= 1200 // installed.bulk_max_docs
    stream = names.check_data_stream(installed.namespace)
    ids = stored_ids(es, stream)
    assert sorted(ids) == sorted(r.id for r in records)

    in_60 = sum(r.doc.get("destination.ip", "").startswith("127.60.") for r in records)
    in_60_1 = sum(r.doc.get("destination.ip", "").startswith("127.60.1.") for r in records)
    assert 0 < in_60_1 < in_60 < 1200
    for cidr, expected in (("127.60.0.0/16", in_60), ("127.60.1.0/24", in_60_1)):
        got = es.count(index=stream, query={"term": {"destination.ip": cidr}})["count"]
        assert got == expected, cidr

    per_resolver = Counter(r.doc["edgewatch.resolver.name"] for r in records)
    resp = es.search(index=stream, size=0,
                     aggs={"by": {"terms": {"field": "edgewatch.resolver.name", "size": 20}}})
    buckets = {b["key"]: b["doc_count"] for b in resp["aggregations"]["by"]["buckets"]}
    assert buckets == dict(per_resolver)
    failures = es.count(index=stream, query={"bool": {"must_not": {"exists": {
        "field": "destination.ip"}}}})["count"]
    assert failures == sum("destination.ip" not in r.doc for r in records) > 0
    assert spool_pending(installed.spool_dir) == 0


async def test_a_replay_never_duplicates(es: Elasticsearch,
                                         installed: ElasticsearchSettings) -> None:
    records = check_records(300)
    await deliver(installed, records[:200])
    again = await deliver(installed, records)  # 200 seen before + 100 new
    assert (again.stats.duplicates, again.stats.delivered) == (200, 100)
    ids = stored_ids(es, names.check_data_stream(installed.namespace))
    assert len(ids) == len(set(ids)) == 300


async def test_unexpected_and_malformed_fields_are_dead_lettered_with_reason(
    es: Elasticsearch, installed: ElasticsearchSettings, caplog: pytest.LogCaptureFixture
) -> None:
    good = check_records(50)
    extra = Record(kind="check", id="extra-field", doc={**good[3].doc, "dns.surprise": "x"})
    bad_ip = Record(kind="check", id="bad-ip",
                    doc={**good[4].doc, "destination.ip": "not-an-address"})
    no_version = Record(kind="run", id="run-without-version", doc={"edgewatch.run.id": "r"})
    with caplog.at_level(logging.ERROR, logger="pipeline.sinks.deadletter"):
        sink = await deliver(installed, [*good[:25], extra, bad_ip, *good[25:]], [no_version])
    assert sink.stats.dead_lettered == 3 and sink.stats.delivered == 50

    files = list(installed.dead_letter_dir.glob("dead-letter-*.ndjson"))
    assert len(files) == 1
    letters = {x["_id"]: x for x in map(orjson.loads, files[0].read_bytes().splitlines())}
    assert set(letters) == {"extra-field", "bad-ip", "run-without-version"}
    assert letters["extra-field"]["error"]["type"] == "strict_dynamic_mapping_exception"
    assert "surprise" in letters["extra-field"]["error"]["reason"]
    assert letters["extra-field"]["document"]["dns.surprise"] == "x"
    assert letters["extra-field"]["status"] == 400
    assert letters["bad-ip"]["error"]["type"] == "document_parsing_exception"
    assert "not-an-address" in letters["bad-ip"]["error"]["reason"]
    assert letters["run-without-version"]["error"]["type"] == "invalid_record"
    assert sum("dead letter" in r.getMessage() for r in caplog.records) == 3

    ids = stored_ids(es, names.check_data_stream(installed.namespace))
    assert "extra-field" not in ids and "bad-ip" not in ids and len(ids) == 50
    assert spool_pending(installed.spool_dir) == 0


async def test_run_summaries_keep_the_newest_version_whatever_the_arrival_order(
    es: Elasticsearch, installed: ElasticsearchSettings
) -> None:
    t = [START + timedelta(minutes=15 * i) for i in range(12)]
    a, b = "run-a", "run-b"
    snapshots = [
        run_record(a, 1, start=t[0], last_seen=t[0], checks=1),
        run_record(b, 1, start=t[2], last_seen=t[2], checks=1, address="127.60.2.9"),
        run_record(a, 3, start=t[0], last_seen=t[2], checks=3),
        run_record(a, 2, start=t[0], last_seen=t[1], checks=2),  # late, older
        run_record(b, 4, start=t[2], last_seen=t[4], checks=3, gaps=1, address="127.60.2.9"),
    ]
    closing = [
        run_record(a, 6, start=t[0], last_seen=t[4], checks=5, end=t[5]),
        run_record(a, 5, start=t[0], last_seen=t[4], checks=5),  # older than the closing one
    ]
    first = await deliver(installed, snapshots)
    second = await deliver(installed, closing, snapshots[:2])  # a replay of old versions too
    assert first.stats.stale == 1 and second.stats.stale == 3

    index = names.runs_index(installed.namespace)
    es.indices.refresh(index=index)
    doc_a = es.get(index=index, id=a)
    assert doc_a["_version"] == 6
    src = doc_a["_source"]
    assert (src["edgewatch.run.start"], src["edgewatch.run.last_seen"],
            src["edgewatch.run.end"]) == (
        "2026-03-02T00:00:00.000Z", "2026-03-02T01:00:00.000Z", "2026-03-02T01:15:00.000Z")
    assert (src["edgewatch.run.checks"], src["edgewatch.run.open"],
            src["edgewatch.run.duration.s"]) == (5, False, 4500)
    doc_b = es.get(index=index, id=b)["_source"]
    assert (doc_b["edgewatch.run.checks"], doc_b["edgewatch.run.gaps"],
            doc_b["edgewatch.run.open"]) == (3, 1, True)
    assert "edgewatch.run.end" not in doc_b
    assert es.count(index=index)["count"] == 2
    open_runs = es.count(index=index, query={"term": {"edgewatch.run.open": True}})["count"]
    assert open_runs == 1


async def test_with_two_batches_in_flight_the_newest_run_version_is_the_one_stored(
    es: Elasticsearch, installed: ElasticsearchSettings
) -> None:
    """Forty snapshots of one run, each in its own small batch beside a check, written at once:
    every batch is due, so adjacent batches are on the wire together and may be stored in
    either order. The newest snapshot is what stays; every check is stored once."""
    t = [START + timedelta(minutes=15 * i) for i in range(41)]
    checks = check_records(40)
    records: list[Record] = []
    for i, check in enumerate(checks, start=1):
        records += [check, run_record("run-a", i, start=t[0], last_seen=t[i - 1], checks=i)]
    sink = await deliver(settings_for(installed.url, installed.namespace,
                                      installed.spool_dir.parent, bulk_max_docs=2), records)
    assert sink.stats.bulk_requests == 40
    assert sink.stats.delivered + sink.stats.stale == 80 and sink.stats.dead_lettered == 0
    index = names.runs_index(installed.namespace)
    es.indices.refresh(index=index)
    doc = es.get(index=index, id="run-a")
    assert (doc["_version"], doc["_source"]["edgewatch.run.checks"]) == (40, 40)
    assert Counter(stored_ids(es, names.check_data_stream(installed.namespace))) == Counter(
        c.id for c in checks)


async def test_without_setup_records_wait_in_the_spool_until_setup_runs(
    es: Elasticsearch, es_url: str, es_namespace: str, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import io

    from pipeline.commands.setup import setup

    settings = settings_for(es_url, es_namespace, tmp_path)
    records = check_records(40)
    with caplog.at_level(logging.ERROR, logger="pipeline.sinks.elasticsearch"):
        sink = await deliver(settings, records)
    assert sink.stats.delivered == 0 and sink.stats.dead_lettered == 0
    assert any("edgewatch setup" in r.getMessage() for r in caplog.records)
    assert spool_pending(settings.spool_dir) == 40
    assert not es.indices.exists(index=names.check_data_stream(es_namespace))
    try:
        setup(settings, out=io.StringIO())
        later = await deliver(settings)
        assert later.stats.delivered == 40
        assert spool_pending(settings.spool_dir) == 0
    finally:
        es.options(ignore_status=404).indices.delete(index=names.runs_index(es_namespace))


async def test_a_full_spool_refuses_loudly_and_counts(
    es_url: str, es_namespace: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Not set up: nothing can be delivered, so the spool fills; 29 records of ~2 KB vs 20 KB.
    settings = settings_for(es_url, es_namespace, tmp_path, spool_max_bytes=20_000)
    with caplog.at_level(logging.ERROR):
        sink = await deliver(settings, check_records(30, first=1))
    assert sink.stats.refused > 0
    assert sink.stats.spooled + sink.stats.refused == 29
    assert any("SPOOL FULL" in r.getMessage() for r in caplog.records)
    assert spool_pending(settings.spool_dir) == sink.stats.spooled


async def test_check_documents_carry_the_namespace_they_are_delivered_to(
    es: Elasticsearch, installed: ElasticsearchSettings
) -> None:
    """A store written without a cluster says ``default``; loaded into another namespace, the
    document must say that one (a constant_keyword on a full cluster refuses a mismatch)."""
    record = check_records(1, first=0)[0]
    elsewhere = Record(kind="check", id=record.id,
                       doc={**record.doc, "data_stream.namespace": "default"})
    sink = await deliver(installed, [elsewhere])
    assert sink.stats.delivered == 1
    stream = names.check_data_stream(installed.namespace)
    es.indices.refresh(index=stream)
    hit = es.search(index=stream, query={"ids": {"values": [record.id]}})["hits"]["hits"][0]
    assert hit["_source"]["data_stream.namespace"] == installed.namespace != "default"
    assert elsewhere.doc["data_stream.namespace"] == "default"  # the caller's record untouched
