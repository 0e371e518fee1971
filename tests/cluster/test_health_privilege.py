"""A writer without the ``monitor`` cluster privilege: health is not reported, writes go on.

Loopback stub (tests/es/stub.py): the devstack node here runs without security, so it cannot
answer ``GET _cluster/health`` with 403 for a missing privilege. What is checked: one INFO line
naming the privilege, the question asked once and never again over several cycles, no health
gauge value, and every bulk request delivered as usual. Yellow and green from a real cluster are
in test_cluster_faults.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from es.docgen import check_records
from es.stub import root_body, stub_server

from pipeline.config import ElasticsearchSettings
from pipeline.sinks.elasticsearch import ElasticsearchSink

FORBIDDEN = (403, {"error": {"type": "security_exception", "reason": "action "
                             "[cluster:monitor/health] is unauthorized for user [edgewatch]"},
                   "status": 403})


class Writer:
    """Answers as a 9.x cluster that lets the writer index but not read cluster health."""

    def __init__(self) -> None:
        self.health_asked = 0
        self.stored = 0

    def __call__(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        if path == "/" and method == "GET":
            return 200, root_body("9.2.4")
        if method == "HEAD":
            return 200, {}
        if path.startswith("/_cluster/health"):
            self.health_asked += 1
            return FORBIDDEN
        assert path.startswith("/_bulk"), path
        n = len([x for x in body.splitlines() if x.strip()]) // 2
        self.stored += n
        return 200, {"errors": False, "items": [
            {"create": {"_id": str(i), "status": 201}} for i in range(n)]}


async def test_health_forbidden_is_said_once_at_info_and_not_asked_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    writer = Writer()
    records = check_records(50)
    with stub_server(writer) as url, caplog.at_level(logging.INFO):
        settings = ElasticsearchSettings(url=url, namespace="nomonitor",
                                         spool_dir=tmp_path / "spool",
                                         dead_letter_dir=tmp_path / "dead", flush_interval_s=0.05,
                                         request_timeout=5.0)
        sink = ElasticsearchSink(settings, initial_backoff_s=0.02, max_backoff_s=0.1)
        sink.health_every_s = 0.0  # the sender may ask after every bulk too: still once
        await sink.open()
        try:
            for i in range(0, 50, 10):  # five cycles
                await sink.write(records[i:i + 10])
                await sink.flush()
        finally:
            await sink.close()
    lines = [r for r in caplog.records if "monitor cluster privilege" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.INFO], [(r.name, r.getMessage()) for r in lines]
    assert writer.health_asked == 1
    assert sink.watch.cluster.forbidden and sink.watch.cluster.code is None
    assert writer.stored == 50 and sink.stats.delivered == 50
    assert not [r for r in caplog.records if "cluster health is" in r.getMessage()]
