"""The sink's read-ahead overlaps the request it hides behind (``es_readahead.SEND_TURNS``).

The side work (reading and checking the next batch from the spool) is meant to run while the
node indexes the current batch. It only does if the request's body has left by the time the
side work takes the event loop; how many loop turns that needs is up to elasticsearch-py and
aiohttp, so this test counts the bytes the loop's socket transports wrote between the start
of each request and the start of its side work, against the real node. A request the sink put on
the wire ahead (the second one in flight, ``ElasticsearchSink._send_ahead``) is counted from when
it was made: by the time its own side work runs, its body must have left too.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events as selector_events

import pytest

from pipeline.config import ElasticsearchSettings
from pipeline.sinks import elasticsearch as sink_module
from pipeline.sinks.elasticsearch import ElasticsearchSink

from .docgen import check_records

pytestmark = pytest.mark.integration


async def test_each_request_is_on_the_socket_before_the_side_work_runs(
        installed: ElasticsearchSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    written = [0]
    plain_write = selector_events._SelectorSocketTransport.write

    def counting_write(self, data) -> None:  # type: ignore[no-untyped-def]
        written[0] += len(data)
        plain_write(self, data)

    monkeypatch.setattr(selector_events._SelectorSocketTransport, "write", counting_write)
    made_at: dict[int, int] = {}  # id of a request's coroutine → bytes written when made
    plain_send_bulk = sink_module.es_bulk.send_bulk

    def made(*args, **kwargs):  # type: ignore[no-untyped-def]
        request = plain_send_bulk(*args, **kwargs)
        made_at[id(request)] = written[0]
        return request

    monkeypatch.setattr(sink_module.es_bulk, "send_bulk", made)
    sent_before_side_work: list[int] = []
    sent_ahead = [0]
    plain_while_sending = sink_module.while_sending

    async def watched(request, side_work):  # type: ignore[no-untyped-def]
        if isinstance(request, asyncio.Task):
            sent_ahead[0] += 1
            start = made_at[id(request.get_coro())]
        else:
            start = made_at[id(request)]

        def side() -> None:
            sent_before_side_work.append(written[0] - start)
            side_work()
        return await plain_while_sending(request, side)

    monkeypatch.setattr(sink_module, "while_sending", watched)
    records = check_records(2000)
    sink = ElasticsearchSink(installed)
    await sink.open()
    try:
        await sink.write(records)
        await sink.flush()
    finally:
        await sink.close()
    assert sink.stats.delivered == 2000
    batches = 2000 // installed.bulk_max_docs
    assert len(sent_before_side_work) >= batches - 1
    body = min(len(r.to_json()) for r in records) * installed.bulk_max_docs
    # the first request may open the connection (more turns); every later one is out in full
    late = [n for n in sent_before_side_work[1:] if n < body]
    assert not late, f"side work ran before the request left: {sent_before_side_work}"
    # one write of 2,000 records: every batch after the first is due at once and goes out ahead
    assert sent_ahead[0] >= batches - 2, sent_ahead
