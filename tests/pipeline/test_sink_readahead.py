"""The sink's read-ahead (``pipeline.sinks.es_readahead``): the batch read while the previous
one is on the wire is used only if the cursor has really moved to where it starts."""

from __future__ import annotations

from pathlib import Path

from pipeline.sinks.es_readahead import ReadAhead
from pipeline.sinks.spool import Spool, SpoolEntry


def _entries(first: int, n: int) -> list[SpoolEntry]:
    return [SpoolEntry("check", f"id-{i}", None, b'{"n":%d}' % i) for i in range(first, first + n)]


def _ids(batch) -> list[str]:
    return [e.id for e in batch.entries]


def test_the_batch_read_ahead_follows_a_delivered_batch_and_is_dropped_otherwise(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.open()
    try:
        spool.append(_entries(0, 10))
        ahead = ReadAhead(spool, max_docs=4, max_bytes=1 << 20)
        first = ahead.take()
        assert _ids(first) == [f"id-{i}" for i in range(4)]
        ahead.prepare(first)  # while `first` is on the wire
        spool.append(_entries(10, 2))  # more records arrive meanwhile
        spool.commit(first)  # every item of `first` answered
        second = ahead.take()
        assert _ids(second) == [f"id-{i}" for i in range(4, 8)]
        assert second.start == spool.cursor
        # Read ahead of a batch that is then NOT committed: the cursor stays, so the
        # read-ahead is dropped and the same records are read again from the cursor.
        ahead.prepare(second)
        again = ahead.take()
        assert _ids(again) == _ids(second)
        spool.commit(again)
        ahead.prepare(again)
        rest = ahead.take()
        spool.commit(rest)
        ahead.prepare(rest)  # nothing follows: no read-ahead kept
        assert _ids(rest) == [f"id-{i}" for i in range(8, 12)]
        assert spool.is_empty() and ahead.take().size == 0
    finally:
        spool.close()
