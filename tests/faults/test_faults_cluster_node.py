"""Faults of the node itself while the sink writes cycle after cycle: SIGKILL of the node in the
middle of a bulk request then a restart on the same data folder, 429 from a saturated write
thread pool, and yellow/red health. One node of the module's own (real devstack Elasticsearch,
its own port; the session's node is left alone), stopped at the end.

After each fault every expected document is stored exactly once (counted by ``_id``, content
compared for a sample), the spool is empty, nothing is dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from es.docgen import START
from faults_cluster_helpers import (
    OwnNode,
    check_records,
    cycle_batches,
    drain,
    hammer,
    install,
    run_record,
    settings_for,
    spool_pending,
    tally,
)

from pipeline.es import names
from pipeline.sinks.elasticsearch import ElasticsearchSink

pytestmark = pytest.mark.integration

RUNS = 5  # run summaries updated every cycle alongside the checks, as the cycle writes them


@pytest.fixture(scope="module")
def own_node() -> Iterator[OwnNode]:
    node = OwnNode()
    try:
        node.start()
        yield node
    finally:
        node.stop()


def cycles_with_runs(total: int, per_cycle: int = 50):
    """[(cycle, batch)]: each batch is the cycle's checks then its run summaries (version =
    cycle number), the way CycleRunner hands them to the sink."""
    out = []
    for n, checks in enumerate(cycle_batches(check_records(total), per_cycle), start=1):
        runs = [run_record(f"run-{j}", n, start=START, last_seen=START, checks=n)
                for j in range(RUNS)]
        out.append((n, [*checks, *runs]))
    return out


def check_runs(es: Elasticsearch, namespace: str, last_cycle: int) -> None:
    index = names.runs_index(namespace)
    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == RUNS
    for j in range(RUNS):
        doc = es.get(index=index, id=f"run-{j}")
        assert doc["_version"] == last_cycle
        assert doc["_source"]["edgewatch.run.checks"] == last_cycle


async def test_node_sigkilled_mid_bulk_then_restarted_loses_and_duplicates_nothing(
    own_node: OwnNode, tmp_path: Path,
) -> None:
    ns = "killed"
    # Large batches (~1 MB) so that the kill lands while the node is still working on one.
    settings = settings_for(own_node.url, ns, tmp_path, request_timeout=5.0, bulk_max_docs=500)
    install(settings)
    cycles = cycles_with_runs(3000)
    records = [r for _, batch in cycles for r in batch if r.kind == "check"]
    sink = ElasticsearchSink(settings, initial_backoff_s=0.05, max_backoff_s=0.5)
    killed = threading.Event()
    acked = 0

    class KillMidBulk(logging.Handler):
        """SIGKILL the node just after a bulk request starts, once 1000 checks are acked."""

        def emit(self, record: logging.LogRecord) -> None:
            if (record.getMessage().startswith("bulk: sending") and acked >= 1000
                    and not killed.is_set()):
                killed.set()
                threading.Timer(0.03, own_node.kill9).start()

    logger = logging.getLogger("pipeline.sinks.elasticsearch")
    handler, level = KillMidBulk(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    await sink.open()
    try:
        i = 0

        async def produce(upto: int) -> None:
            nonlocal i, acked
            while i < len(cycles) and acked < upto:
                await sink.write(cycles[i][1])
                acked += sum(r.kind == "check" for r in cycles[i][1])
                i += 1
                await asyncio.sleep(0.01)

        await produce(1000)
        for _ in range(600):  # the next bulk request kills the node
            if killed.is_set():
                break
            await asyncio.sleep(0.05)
        assert killed.is_set()
        await produce(2000)  # the producer goes on while the node is dead
        await asyncio.sleep(0.5)
        await sink.flush()  # returns after a failed attempt: nothing is reachable
        assert sink.stats.failed_attempts > 0 and sink.spool.pending_entries > 0
        waiting = sink.spool.pending_entries

        await asyncio.to_thread(own_node.start)  # same data folder, same port
        for _, batch in cycles[i:]:
            await sink.write(batch)
            await asyncio.sleep(0.01)
        await drain(sink, within_s=120)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        await sink.close()
    with Elasticsearch(own_node.url, request_timeout=30) as es:
        t = tally(es, ns, records, settings.dead_letter_dir)
        check_runs(es, ns, last_cycle=len(cycles))
    print(f"node SIGKILL: {t.line()} ({waiting} waited in the spool; "
          f"{sink.stats.duplicates} replayed items answered 409)")
    assert (t.expected, t.stored, t.duplicated, t.lost, t.dead_lettered) == (3000, 3000, 0, 0, 0)
    assert sink.stats.dead_lettered == 0 and sink.stats.refused == 0
    assert spool_pending(settings.spool_dir) == 0


async def test_429_from_a_saturated_write_pool_is_retried_until_all_is_stored(
    own_node: OwnNode, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    ns = "overload"
    settings = settings_for(own_node.url, ns, tmp_path, request_timeout=10.0)
    install(settings)
    cycles = cycles_with_runs(1500)
    records = [r for _, batch in cycles for r in batch if r.kind == "check"]
    sink = ElasticsearchSink(settings, initial_backoff_s=0.02, max_backoff_s=0.2)
    await sink.open()
    try:
        with caplog.at_level(logging.WARNING, logger="pipeline.sinks.elasticsearch"), \
                hammer(own_node.url) as rejected_for_hammer:
            for _, batch in cycles:
                await sink.write(batch)
                await asyncio.sleep(0.01)
            await asyncio.sleep(1.0)
        await drain(sink)  # the overload is over
    finally:
        await sink.close()
    assert rejected_for_hammer[429] > 0  # the node really was rejecting writes
    assert sink.stats.failed_attempts > 0  # ... ours too, and they were retried
    with Elasticsearch(own_node.url, request_timeout=30) as es:
        t = tally(es, ns, records, settings.dead_letter_dir)
        check_runs(es, ns, last_cycle=len(cycles))
    paused = sum("delivery paused" in r.getMessage() for r in caplog.records)
    resumed = sum("delivery resumed" in r.getMessage() for r in caplog.records)
    print(f"429 overload: {t.line()} ({sink.stats.failed_attempts} attempts retried, "
          f"{paused} 'paused' lines)")
    assert (t.expected, t.stored, t.duplicated, t.lost, t.dead_lettered) == (1500, 1500, 0, 0, 0)
    assert 0 < paused <= resumed + 1 and paused <= sink.stats.failed_attempts
    assert spool_pending(settings.spool_dir) == 0


async def test_yellow_and_red_health_are_logged_once_each_and_writes_go_on(
    own_node: OwnNode, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    ns = "health"
    settings = settings_for(own_node.url, ns, tmp_path)
    install(settings)
    cycles = cycles_with_runs(600, per_cycle=20)
    records = [r for _, batch in cycles for r in batch if r.kind == "check"]
    sink = ElasticsearchSink(settings, initial_backoff_s=0.02, max_backoff_s=0.2)
    sink.health_every_s = 0.0  # after every bulk, to see each change
    es = Elasticsearch(own_node.url, request_timeout=30)
    thirds = len(cycles) // 3
    try:
        await sink.open()
        with caplog.at_level(logging.WARNING, logger="pipeline.sinks.elasticsearch"):
            for n, batch in cycles:
                if n == thirds:  # a replica that cannot be placed on one node: yellow
                    es.indices.create(index="faults-yellow", settings={
                        "number_of_shards": 1, "number_of_replicas": 1})
                if n == 2 * thirds:  # a primary that cannot be placed anywhere: red
                    es.indices.create(index="faults-red", wait_for_active_shards="0", settings={
                        "number_of_shards": 1, "number_of_replicas": 0,
                        "index.routing.allocation.require._name": "no-such-node"})
                await sink.write(batch)
                await sink.flush()
            es.indices.delete(index="faults-yellow,faults-red")
            await sink.write(check_records(601, first=600))
            await sink.flush()
        await drain(sink)
    finally:
        await sink.close()
        es.options(ignore_status=404).indices.delete(index="faults-yellow,faults-red")
    lines = [r.getMessage() for r in caplog.records if "cluster health" in r.getMessage()]
    assert sum(" is yellow" in x for x in lines) == 1, lines
    assert sum(" is red" in x for x in lines) == 1, lines
    assert sum("green again" in x for x in lines) == 1, lines
    t = tally(es, ns, [*records, *check_records(601, first=600)], settings.dead_letter_dir)
    es.close()
    print(f"yellow/red health: {t.line()}")
    assert (t.stored, t.duplicated, t.lost, t.dead_lettered) == (601, 0, 0, 0)
