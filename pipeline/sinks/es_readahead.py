"""Reading the next batch while the current one is on the wire.

With one bulk request in flight (the sink keeps strict order between batches), everything the
sender does between two requests adds to the wall time per batch: reading and CRC-checking the
spool lines and assembling the next body cost about as much client CPU as the request itself.
Both depend only on the spool's bytes, not on the answer to the current request, so they are
done while Elasticsearch indexes the current batch, and the next request goes out as soon as
the answer is settled. Nothing about delivery changes: the cursor still moves only past a batch
whose every item has its final answer, and a read-ahead batch that no longer starts at the
cursor (the current one was not delivered in full) is simply dropped and read again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pipeline.sinks.spool import Batch, Spool, SpoolEntry

T = TypeVar("T")


class ReadAhead:
    """At most one batch read ahead of the cursor, with its bulk body (``build``, when given,
    turns a batch's entries into the request body)."""

    def __init__(self, spool: Spool, max_docs: int, max_bytes: int,
                 build: Callable[[list[SpoolEntry]], bytes] | None = None) -> None:
        self.spool = spool
        self.max_docs = max_docs
        self.max_bytes = max_bytes
        self._build = build
        self._next: Batch | None = None
        self._next_body: bytes | None = None
        self.body: bytes | None = None  # the body of the batch ``take`` returned, if built

    def take(self) -> Batch:
        """The read-ahead batch if it starts at the cursor, else a fresh read."""
        batch, body = self._next, self._next_body
        self._next = self._next_body = self.body = None
        if batch is not None and batch.start == self.spool.cursor and batch.size:
            self.body = body
            return batch
        return self.spool.read(self.max_docs, self.max_bytes)

    def prepare(self, after: Batch) -> None:
        """Read the batch that follows ``after`` (nothing if the spool ends there), and build
        its body: neither depends on the answer to ``after``'s request."""
        nxt = self.spool.read(self.max_docs, self.max_bytes, start=after.end)
        self._next = nxt if nxt.size else None
        if self._next is not None and self._build is not None:
            self._next_body = self._build(self._next.entries)

    def drop(self) -> None:
        self._next = self._next_body = None

    @property
    def ready(self) -> Batch | None:
        """The batch read ahead (with its body built), if any."""
        return self._next if self._next_body is not None else None

    def pop(self) -> tuple[Batch, bytes]:
        """Hand over the batch read ahead and its body: its request goes out now."""
        batch, body = self._next, self._next_body
        if batch is None or body is None:
            raise RuntimeError("no batch read ahead")
        self._next = self._next_body = None
        return batch, body


# Turns of the event loop a bulk request needs before its body is on the socket, so that the
# side work runs while Elasticsearch indexes and not before the request has left. Counted with
# the transport's ``write`` patched (tests/es/test_es_readahead_overlap.py holds it): two turns
# on a kept-alive connection with elasticsearch-py 9 over aiohttp, seven for the first request
# of a fresh connection (which then only loses the overlap once). One turn, as before, ran the
# side work first every time: 3,600–4,100 against 4,000–5,600 docs/s in the same minutes.
SEND_TURNS = 3


async def while_sending(request: Awaitable[T], side_work: Callable[[], None]) -> T:
    """Start ``request``, do ``side_work`` while it is on its way, return its answer.

    The request gets ``SEND_TURNS`` turns of the event loop first, so that it is written to
    the socket before the side work takes the CPU. Cancelled with the caller.
    """
    task = asyncio.ensure_future(request)
    try:
        for _ in range(SEND_TURNS):
            await asyncio.sleep(0)
        side_work()
        return await task
    finally:
        if not task.done():
            task.cancel()
