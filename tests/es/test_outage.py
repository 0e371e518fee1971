"""A node that goes away in the middle of a stream: records wait in the spool, nothing is lost,
nothing is stored twice. Uses its own node (stopped and restarted on the same data folder)."""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from devstack.node import free_port, start_node
from pipeline.commands.setup import setup
from pipeline.es import names
from pipeline.sinks.elasticsearch import ElasticsearchSink
from pipeline.sinks.spool import opened

from .conftest import settings_for, stored_ids
from .docgen import check_records

pytestmark = pytest.mark.integration

TOTAL, CHUNK = 3000, 50


async def test_stopping_the_node_mid_stream_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # Directly under the temp root: the node runs as its own user, who cannot enter tmp_path.
    run_dir, port = Path(tempfile.mkdtemp(prefix="edgewatch-outage-")), free_port()
    node = await asyncio.to_thread(start_node, run_dir=run_dir, port=port, heap="512m")
    try:
        settings = settings_for(node.url, "outage", tmp_path, bulk_max_docs=100,
                                request_timeout=5.0)
        setup(settings, out=io.StringIO())
        records = check_records(TOTAL)
        sink = ElasticsearchSink(settings, initial_backoff_s=0.05, max_backoff_s=0.5)
        await sink.open()
        written = 0

        async def produce(upto: int) -> None:
            nonlocal written
            while written < upto:
                await sink.write(records[written:written + CHUNK])
                written += CHUNK
                await asyncio.sleep(0.01)

        await produce(1000)
        # Stop while the stream goes on: the producer keeps writing during the shutdown.
        producer = asyncio.create_task(produce(2000))
        await asyncio.to_thread(node.stop)
        await producer
        await sink.flush()  # returns after a failed attempt: nothing is reachable
        assert sink.stats.failed_attempts > 0
        spooled_while_down = sink.spool.pending_entries
        assert spooled_while_down > 0
        delivered_before_restart = sink.stats.delivered + sink.stats.duplicates

        node = await asyncio.to_thread(start_node, run_dir=run_dir, port=port, heap="512m")
        await produce(TOTAL)
        deadline = time.monotonic() + 90
        while not sink.spool.is_empty() and time.monotonic() < deadline:
            await sink.flush()
            await asyncio.sleep(0.05)
        await sink.close()
        assert sink.stats.dead_lettered == 0 and sink.stats.refused == 0
        assert sink.stats.delivered + sink.stats.duplicates >= TOTAL > delivered_before_restart

        with Elasticsearch(node.url, request_timeout=30) as es2:
            ids = stored_ids(es2, names.check_data_stream("outage"))
            count = es2.count(index=names.check_data_stream("outage"))["count"]
        assert len(ids) == count == TOTAL  # every document present ...
        assert len(set(ids)) == TOTAL  # ... exactly once
        assert set(ids) == {r.id for r in records}
        with opened(settings.spool_dir) as spool:
            assert spool.is_empty() and spool.pending_entries == 0
    finally:
        await asyncio.to_thread(node.stop)
        shutil.rmtree(run_dir, ignore_errors=True)
