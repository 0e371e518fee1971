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


def test_the_body_built_ahead_belongs_to_the_batch_taken_and_only_to_it(tmp_path: Path) -> None:
    """The request body is assembled while the previous request is on the wire; a body is
    handed out only with the very batch it was built from (a fresh read has none, so the
    sender builds it), and it is exactly the body the sender would have built."""
    from pipeline.sinks.es_bulk import bulk_body

    built: list[list[str]] = []

    def build(entries: list[SpoolEntry]) -> bytes:
        built.append([e.id for e in entries])
        return bulk_body(entries, "ns")

    spool = Spool(tmp_path / "spool")
    spool.open()
    try:
        spool.append(_entries(0, 8))
        ahead = ReadAhead(spool, max_docs=4, max_bytes=1 << 20, build=build)
        first = ahead.take()
        assert ahead.body is None and built == []  # read at the cursor: nothing built ahead
        ahead.prepare(first)
        assert built == [[f"id-{i}" for i in range(4, 8)]]
        spool.commit(first)
        second = ahead.take()
        assert ahead.body == bulk_body(second.entries, "ns")
        ahead.prepare(second)  # nothing follows: nothing built
        assert len(built) == 1
        again = ahead.take()  # `second` was not committed: read again, its body not reused
        assert _ids(again) == _ids(second) and ahead.body is None
    finally:
        spool.close()
