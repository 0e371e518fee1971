"""A cluster that refuses the sink's credentials (401) is a fatal refusal, not silent spooling.

Loopback stub (tests/es/stub.py): the devstack node runs without security, so it cannot reject
credentials. What is checked: ``write`` raises ``DeliveryRefused`` (one line, no secret; the
cycle then rolls back and reports the cycle as not delivered, so ``run`` ends non-zero),
``sink.refusal`` is set, nothing piles up in the spool, and once the cluster accepts again the
refusal clears by itself and records flow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from es.stub import root_body, stub_server
from faults_cluster_helpers import check_records, run_once_into, settings_for

from pipeline.config import Secret
from pipeline.es.cluster import ClusterRefused, ClusterUnauthorized
from pipeline.sinks.elasticsearch import DeliveryRefused, ElasticsearchSink

UNAUTHORIZED = (401, {"error": {"type": "security_exception",
                                "reason": "unable to authenticate with provided credentials"},
                      "status": 401})


class Cluster:
    """GET / and HEAD answer as 9.x; ``refuse`` decides which paths answer 401."""

    def __init__(self, refuse: tuple[str, ...]) -> None:
        self.refuse = refuse
        self.bulks = 0

    def __call__(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        if any(path.startswith(p) for p in self.refuse):
            return UNAUTHORIZED
        if path == "/" and method == "GET":
            return 200, root_body("9.2.4")
        if method == "HEAD":
            return 200, {}
        if path.startswith("/_cluster/health"):
            return 200, {"status": "green", "unassigned_shards": 0}
        assert path.startswith("/_bulk"), path
        self.bulks += 1
        n = len([x for x in body.splitlines() if x.strip()]) // 2
        return 200, {"errors": False, "items": [
            {"create": {"_id": str(i), "status": 201}} for i in range(n)]}


async def _until(predicate, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_rejected_credentials_refuse_the_write_until_the_cluster_accepts_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = Cluster(refuse=("/",))
    records = check_records(30)
    with stub_server(cluster) as url, caplog.at_level(logging.ERROR):
        settings = settings_for(url, "auth", tmp_path, username="edgewatch",
                                password=Secret("hunter2-secret"))
        sink = ElasticsearchSink(settings, initial_backoff_s=0.02, max_backoff_s=0.1)
        await sink.open()
        try:
            with pytest.raises(DeliveryRefused) as caught:
                await sink.write(records[:10])  # the first cycle is already refused
            message = str(caught.value)
            assert isinstance(caught.value, ClusterUnauthorized | ClusterRefused)
            assert "\n" not in message and "hunter2-secret" not in message
            assert "rejected the credentials" in message and "401" in message
            assert isinstance(sink.refusal, ClusterUnauthorized)
            assert sink.spool.is_empty()  # not spooling forever, silently
            with pytest.raises(DeliveryRefused):
                await sink.write(records[10:20])  # every cycle, while it lasts

            cluster.refuse = ()  # the key is re-enabled on the cluster
            await _until(lambda: sink.refusal is None)
            await sink.write(records[20:])
            await sink.flush()
            assert sink.stats.delivered == 10 and sink.spool.is_empty()
        finally:
            await sink.close()
    refusals = [r for r in caplog.records if "delivery refused" in r.getMessage()]
    assert len(refusals) == 1  # logged once per state change, not per attempt
    assert "hunter2-secret" not in caplog.text


async def test_a_bulk_answered_401_stops_accepting_and_keeps_what_was_acknowledged(
    tmp_path: Path,
) -> None:
    cluster = Cluster(refuse=("/_bulk",))  # e.g. an API key that lost its index privilege
    records = check_records(20)
    with stub_server(cluster) as url:
        settings = settings_for(url, "auth", tmp_path)
        sink = ElasticsearchSink(settings, initial_backoff_s=0.02, max_backoff_s=0.1)
        await sink.open()
        try:
            await sink.write(records[:10])  # first contact passed: acknowledged, spooled
            await _until(lambda: sink.refusal is not None)
            with pytest.raises(DeliveryRefused):
                await sink.write(records[10:])
            assert sink.spool.pending_entries == 10  # acknowledged records are kept
            cluster.refuse = ()
            await _until(lambda: sink.spool.is_empty())
            assert sink.refusal is None
            await sink.write(records[10:])
            await sink.flush()
        finally:
            await sink.close()
    assert sink.stats.delivered == 20 and sink.stats.dead_lettered == 0


def test_run_once_against_a_cluster_refusing_the_credentials_exits_non_zero(
    tmp_path: Path,
) -> None:
    """End to end through ``edgewatch run --once`` (loopback only: the resolver is a closed
    loopback port, reverse DNS off): the refused cycle is reported, the exit is not 0."""
    with stub_server(lambda method, path, body: UNAUTHORIZED) as url:
        result = run_once_into(tmp_path, url, tmp_path / "spool")
    assert result.returncode != 0, result.stderr
    assert "rejected the credentials" in result.stderr
    assert "NOT DELIVERED" in result.stderr
