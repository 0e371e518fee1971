"""What each bulk answer means, and the sink's retry loop under answers a real node won't give.

The verdict table is plain logic. The retry tests use the loopback stub of tests/es/stub.py —
the one place Elasticsearch is stood in for — because the devstack node cannot be made to answer
429 or 503 on cue; outages of the real node are covered in test_outage.py.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from pipeline.config import ElasticsearchSettings
from pipeline.es.bulk import Verdict, classify
from pipeline.sinks.elasticsearch import ElasticsearchSink
from pipeline.sinks.spool import opened

from .conftest import settings_for
from .docgen import check_records, run_record
from .stub import root_body, stub_server


@pytest.mark.parametrize(("op", "status", "error_type", "verdict"), [
    ("create", 201, None, Verdict.DELIVERED),
    ("index", 200, None, Verdict.DELIVERED),
    ("create", 409, "version_conflict_engine_exception", Verdict.DUPLICATE),
    ("index", 409, "version_conflict_engine_exception", Verdict.STALE),
    ("create", 429, "es_rejected_execution_exception", Verdict.RETRY),
    ("create", 429, "circuit_breaking_exception", Verdict.RETRY),
    ("create", 503, "unavailable_shards_exception", Verdict.RETRY),
    ("create", 403, "cluster_block_exception", Verdict.RETRY),
    ("create", 404, "index_not_found_exception", Verdict.NOT_READY),
    ("create", 400, "strict_dynamic_mapping_exception", Verdict.DEAD),
    ("create", 400, "document_parsing_exception", Verdict.DEAD),
    ("index", 400, "illegal_argument_exception", Verdict.DEAD),
])
def test_bulk_item_verdicts(op: str, status: int, error_type: str | None,
                            verdict: Verdict) -> None:
    error = {"type": error_type, "reason": "x"} if error_type else None
    assert classify(op, status, error) is verdict


class ScriptedBulk:
    """Answers GET / as 9.x, HEAD of any index as present, and _bulk from a script."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.bulks: list[list[str]] = []  # the _ids of each bulk request received

    def __call__(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        if path == "/" and method == "GET":
            return 200, root_body("9.2.4")
        if method == "HEAD":
            return 200, {}
        if path.startswith("/_cluster/health"):  # asked after a pause ends
            return 200, {"status": "green"}
        assert path.startswith("/_bulk"), path
        lines = [json.loads(x) for x in body.splitlines() if x.strip()]
        actions = lines[0::2]
        ids = [next(iter(a.values()))["_id"] for a in actions]
        self.bulks.append(ids)
        step = self.script.pop(0) if self.script else "ok"
        if step in ("429", "503"):
            return int(step), {"error": {"type": "es_rejected_execution_exception",
                                         "reason": "scripted"}, "status": int(step)}
        items = []
        for i, action in enumerate(actions):
            op = next(iter(action))
            if step == "half-429" and i % 2:
                items.append({op: {"_id": ids[i], "status": 429, "error": {
                    "type": "es_rejected_execution_exception", "reason": "scripted"}}})
            elif step == "item-500":
                items.append({op: {"_id": ids[i], "status": 500, "error": {
                    "type": "exception", "reason": "scripted server fault"}}})
            else:
                items.append({op: {"_id": ids[i], "status": 201, "result": "created"}})
        return 200, {"took": 1, "errors": step != "ok", "items": items}


async def deliver_to_stub(script: ScriptedBulk, records: list, tmp_path: Path,
                          bulk_max_docs: int = 200, **sink_options: float
                          ) -> tuple[ElasticsearchSink, ElasticsearchSettings]:
    """Write ``records`` into a sink whose cluster is the stub answering with ``script``,
    flush until the spool is empty (ten tries at most), close; the sink and its settings."""
    with stub_server(script) as url:
        settings = settings_for(url, "stub", tmp_path, bulk_max_docs=bulk_max_docs)
        sink = ElasticsearchSink(settings, **{"initial_backoff_s": 0.01,  # type: ignore[arg-type]
                                              "max_backoff_s": 0.05, **sink_options})
        await sink.open()
        await sink.write(records)
        for _ in range(10):
            await sink.flush()
            if sink.spool.is_empty():
                break
        await sink.close()
    return sink, settings


async def test_overload_answers_are_retried_until_every_record_is_delivered(
    tmp_path: Path,
) -> None:
    records = [*check_records(30), run_record("run-1", 3, start=check_records(1)[0].timestamp,
                                              last_seen=check_records(1)[0].timestamp, checks=3)]
    script = ScriptedBulk(["429", "503", "half-429", "ok"])
    sink, settings = await deliver_to_stub(script, records, tmp_path, bulk_max_docs=100)
    sent = [r.id for r in records]
    assert script.bulks[0] == script.bulks[1] == script.bulks[2] == sent
    assert script.bulks[3] == sent[1::2]  # only the items answered 429 went again
    assert sink.stats.delivered == 31 and sink.stats.dead_lettered == 0
    assert sink.stats.failed_attempts == 3
    with opened(settings.spool_dir) as spool:
        assert spool.is_empty()


async def test_a_document_that_keeps_failing_with_500_is_dead_lettered_eventually(
    tmp_path: Path,
) -> None:
    script = ScriptedBulk(["item-500"] * 3)
    sink, settings = await deliver_to_stub(script, check_records(4), tmp_path,
                                           max_backoff_s=0.02, max_server_error_tries=3)
    assert len(script.bulks) == 3
    assert sink.stats.dead_lettered == 4 and sink.stats.delivered == 0
    letters = next(settings.dead_letter_dir.glob("*.ndjson")).read_text().splitlines()
    assert all("gave up after 3 tries" in line for line in letters)


class FirstBatchHeldThenRefused(ScriptedBulk):
    """Holds its answer to the first request of the first batch until another bulk request has
    arrived (at most 5 s), then answers it 429; every other request is stored."""

    def __init__(self, first_id: str) -> None:
        super().__init__([])
        self.first_id = first_id
        self.lock = threading.Lock()
        self.other_arrived = threading.Event()
        self.refused = False
        self.other_while_held = False

    def __call__(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        if not path.startswith("/_bulk"):
            return super().__call__(method, path, body)
        action = json.loads(body.split(b"\n", 1)[0])
        ids = [next(iter(json.loads(a).values()))["_id"] for a in body.splitlines()[0::2] if a]
        with self.lock:
            refuse = next(iter(action.values()))["_id"] == self.first_id and not self.refused
            self.refused = self.refused or refuse
            if refuse:  # recorded as it arrives, so its retry is recorded after it
                self.bulks.append(ids)
        if not refuse:
            self.other_arrived.set()
            with self.lock:
                return super().__call__(method, path, body)
        self.other_while_held = self.other_arrived.wait(5)
        return 429, {"error": {"type": "es_rejected_execution_exception", "reason": "scripted"},
                     "status": 429}


async def test_the_batch_on_the_wire_ahead_waits_for_the_one_before_it_to_be_delivered(
    tmp_path: Path,
) -> None:
    """Two requests in flight: the second batch goes out while the first is unanswered; the
    first is refused and sent again; both are delivered, each once, and the cursor passes both.
    (The stub: a real node cannot be made to refuse one chosen request.)"""
    records = check_records(20)
    script = FirstBatchHeldThenRefused(records[0].id)
    sink, settings = await deliver_to_stub(script, records, tmp_path, bulk_max_docs=10)
    first, second = [r.id for r in records[:10]], [r.id for r in records[10:]]
    assert script.other_while_held, "the second batch was not sent while the first was out"
    # the two first tries reach the stub's threads in either order; the retry comes after both
    assert sorted(script.bulks[:2]) == sorted([first, second])
    assert script.bulks[2:] == [first]
    assert sink.stats.delivered == 20 and sink.stats.dead_lettered == 0
    assert (sink.stats.bulk_requests, sink.stats.failed_attempts) == (3, 1)
    with opened(settings.spool_dir) as spool:
        assert spool.is_empty()


class FirstTriesHalfRefused(ScriptedBulk):
    """Answers every batch's first request with 429 for every other item (the retries are
    stored), each after 0.1 s (the second batch's first after 0.3 s: it is still open when the
    first batch's retry is due), noting which requests were open together.

    A request is named by (batch, first try?). Two requests sent together reach the stub's
    threads in either order, so an overlap is recorded as the set of the requests then open,
    not as the one that happened to arrive second."""

    def __init__(self, batch_of: dict[str, int]) -> None:
        super().__init__([])
        self.batch_of = batch_of
        self.lock = threading.Lock()
        self.open: set[tuple[int, bool]] = set()
        self.seen: set[int] = set()
        self.overlaps: list[set[tuple[int, bool]]] = []  # the requests open at once, each time

    def __call__(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        if not path.startswith("/_bulk"):
            return super().__call__(method, path, body)
        ids = [next(iter(json.loads(a).values()))["_id"] for a in body.splitlines()[0::2] if a]
        with self.lock:
            batch = self.batch_of[ids[0]]
            first = batch not in self.seen
            self.seen.add(batch)
            request = (batch, first)
            if self.open:
                self.overlaps.append({*self.open, request})
            self.open.add(request)
        time.sleep(0.3 if first and batch == 1 else 0.1)
        with self.lock:
            self.open.discard(request)
            self.script.append("half-429" if first else "ok")
            return super().__call__(method, path, body)


async def test_an_overloaded_cluster_is_sent_one_request_at_a_time(tmp_path: Path) -> None:
    """Four batches, each refused in part at its first request: the second batch goes out ahead
    of the first's answer (nothing was refused yet), but after that refusal the sink sends one
    request at a time, the first batch's retry included (it waits for the second's answer);
    every record is delivered once. (The stub: a real node cannot be made to refuse on cue.)"""
    records = check_records(40)
    batches = [[r.id for r in records[i:i + 10]] for i in range(0, 40, 10)]
    script = FirstTriesHalfRefused({rid: n for n, ids in enumerate(batches) for rid in ids})
    sink, settings = await deliver_to_stub(script, records, tmp_path, bulk_max_docs=10)
    assert script.overlaps == [{(0, True), (1, True)}]  # only the first two, and only once
    assert len(script.bulks) == 8  # each batch: its first request and the retry of its half
    assert sink.stats.delivered == 40 and sink.stats.dead_lettered == 0
    with opened(settings.spool_dir) as spool:
        assert spool.is_empty()
