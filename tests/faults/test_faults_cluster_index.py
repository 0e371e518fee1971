"""Faults of the target indices while the sink writes, on the session's real node: the backing
index made read-only (``index.blocks.write: true``) for a while, and documents the strict mapping
refuses in the middle of the stream.

A write block answers every item with 403 ``cluster_block_exception``: retried (the records wait
in the spool, nothing is dead-lettered) and stored once the block is lifted. A mapping conflict
is a fact about one document: dead-lettered with the reason, never blocking the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from elasticsearch import Elasticsearch
from es.docgen import START
from faults_cluster_helpers import (
    check_records,
    cycle_batches,
    drain,
    install,
    run_record,
    settings_for,
    spool_pending,
    tally,
)

from pipeline.config import ElasticsearchSettings
from pipeline.documents import Record
from pipeline.es import names
from pipeline.sinks.elasticsearch import ElasticsearchSink

pytestmark = pytest.mark.integration


@pytest.fixture
def installed(es: Elasticsearch, es_url: str, es_namespace: str, tmp_path: Path
              ) -> Iterator[ElasticsearchSettings]:
    settings = settings_for(es_url, es_namespace, tmp_path)
    install(settings)
    yield settings
    es.options(ignore_status=404).indices.delete(index=names.runs_index(es_namespace))


def block(es: Elasticsearch, index: str, on: bool) -> None:
    es.indices.put_settings(index=index, settings={"index.blocks.write": on})


async def test_a_read_only_index_holds_records_in_the_spool_until_the_block_is_lifted(
    es: Elasticsearch, installed: ElasticsearchSettings,
) -> None:
    ns = installed.namespace
    stream, runs = names.check_data_stream(ns), names.runs_index(ns)
    records = check_records(900)
    batches = cycle_batches(records, per_cycle=30)
    sink = ElasticsearchSink(installed, initial_backoff_s=0.05, max_backoff_s=0.3)
    await sink.open()
    try:
        for batch in batches[:10]:
            await sink.write(batch)
        await drain(sink)
        assert sink.spool.is_empty()

        block(es, stream, True)  # the data stream's backing index(es)
        block(es, runs, True)
        try:
            for n, batch in enumerate(batches[10:20], start=1):
                await sink.write([*batch, run_record("run-ro", n, start=START,
                                                     last_seen=START, checks=n)])
                await asyncio.sleep(0.02)
            await asyncio.sleep(1.0)
            await sink.flush()
            blocked = sink.spool.pending_entries
            failed = sink.stats.failed_attempts
            assert blocked == 310 and failed > 0  # nothing got through, all is kept
            assert sink.stats.dead_lettered == 0
        finally:
            block(es, stream, False)
            block(es, runs, False)
        for batch in batches[20:]:
            await sink.write(batch)
        await drain(sink)
    finally:
        await sink.close()
    t = tally(es, ns, records, installed.dead_letter_dir)
    print(f"read-only index: {t.line()} ({blocked} waited in the spool, {failed} attempts)")
    assert (t.expected, t.stored, t.duplicated, t.lost, t.dead_lettered) == (900, 900, 0, 0, 0)
    es.indices.refresh(index=runs)
    assert es.get(index=runs, id="run-ro")["_version"] == 10
    assert spool_pending(installed.spool_dir) == 0


async def test_documents_the_mapping_refuses_are_dead_lettered_and_never_block_the_rest(
    es: Elasticsearch, installed: ElasticsearchSettings,
) -> None:
    ns = installed.namespace
    good = check_records(1000)
    poisoned: list[Record] = []
    # Every tenth cycle carries a document the strict mapping refuses, each in another way.
    kinds = [("dns.surprise", "x"), ("destination.ip", "not-an-address"),
             ("destination.port", "four-four-three"), ("@timestamp", "yesterday"),
             ("edgewatch.tcp.established", {"nested": "object"})]
    batches = []
    for n, batch in enumerate(cycle_batches(good, per_cycle=40)):
        if n % 5 == 0:
            field, value = kinds[(n // 5) % len(kinds)]
            bad = Record(kind="check", id=f"poison-{n}", doc={**batch[0].doc, field: value})
            poisoned.append(bad)
            batch = [*batch[:20], bad, *batch[20:]]
        batches.append(batch)
    sink = ElasticsearchSink(installed, initial_backoff_s=0.05, max_backoff_s=0.3)
    await sink.open()
    try:
        for batch in batches:
            await sink.write(batch)
        await drain(sink)
    finally:
        await sink.close()
    t = tally(es, ns, [*good, *poisoned], installed.dead_letter_dir)
    print(f"mapping conflict: {t.line()}")
    assert (t.expected, t.stored, t.duplicated, t.lost) == (1000 + len(poisoned), 1000, 0, 0)
    assert t.dead_lettered == len(poisoned) == sink.stats.dead_lettered == 5
    letters = [orjson.loads(x) for p in installed.dead_letter_dir.glob("*.ndjson")
               for x in p.read_bytes().splitlines()]
    assert {x["_id"] for x in letters} == {p.id for p in poisoned}
    assert all(x["status"] == 400 and x["error"]["reason"] for x in letters)
    assert all(x["document"] == p.doc for x, p in zip(
        sorted(letters, key=lambda x: x["_id"]), sorted(poisoned, key=lambda p: p.id),
        strict=True))
    assert sink.stats.failed_attempts == 0  # a refused document costs no retry, no pause
    assert spool_pending(installed.spool_dir) == 0


async def test_a_cluster_wide_read_only_block_is_waited_out_not_taken_for_a_refusal(
    es: Elasticsearch, installed: ElasticsearchSettings,
) -> None:
    """``cluster.blocks.read_only`` answers the whole bulk request 403 cluster_block_exception:
    the same status as missing privileges, but the cluster's condition — retried, never a
    ``DeliveryRefused``."""
    ns = installed.namespace
    records = check_records(300)
    batches = cycle_batches(records, per_cycle=30)
    sink = ElasticsearchSink(installed, initial_backoff_s=0.05, max_backoff_s=0.3)
    await sink.open()
    try:
        await sink.write(batches[0])
        await drain(sink)
        es.cluster.put_settings(persistent={"cluster.blocks.read_only": True})
        try:
            for batch in batches[1:6]:
                await sink.write(batch)  # accepted: no refusal
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            await sink.flush()
            assert sink.refusal is None and sink.stats.failed_attempts > 0
            blocked = sink.spool.pending_entries
            assert blocked == 150
        finally:
            es.cluster.put_settings(persistent={"cluster.blocks.read_only": None})
        for batch in batches[6:]:
            await sink.write(batch)
        await drain(sink)
    finally:
        await sink.close()
    t = tally(es, ns, records, installed.dead_letter_dir)
    print(f"cluster read-only: {t.line()} ({blocked} waited in the spool)")
    assert (t.expected, t.stored, t.duplicated, t.lost, t.dead_lettered) == (300, 300, 0, 0, 0)
    assert spool_pending(installed.spool_dir) == 0
