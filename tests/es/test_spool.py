"""The spool on its own: order, segments, cursor, torn tails, damage, the lock and the bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.sinks.spool import Spool, SpoolEntry, SpoolError, opened


def entries(first: int, count: int, size: int = 100) -> list[SpoolEntry]:
    return [SpoolEntry(kind="check" if i % 3 else "run", id=f"id-{i:03d}",
                       version=None if i % 3 else i,
                       source=b'{"n":%d,"pad":"%s"}' % (i, b"x" * size))
            for i in range(first, first + count)]


def drain(spool: Spool, max_entries: int = 7, max_bytes: int = 10_000) -> list[SpoolEntry]:
    out: list[SpoolEntry] = []
    while True:
        batch = spool.read(max_entries, max_bytes)
        if batch.size == 0 and batch.end == spool.cursor:
            return out
        out.extend(batch.entries)
        spool.commit(batch)


def test_entries_come_back_in_order_across_segments_and_restarts(tmp_path: Path) -> None:
    written = entries(0, 50)
    with opened(tmp_path, segment_bytes=1000) as spool:
        for i in range(0, 50, 5):
            assert spool.append(written[i:i + 5]) == 5
        assert spool.pending_entries == 50
        assert len(list(tmp_path.glob("*.seg"))) > 3
        batch = spool.read(20, 10_000)
        spool.commit(batch)
        first = batch.entries
    with opened(tmp_path, segment_bytes=1000) as spool:  # a restart resumes at the cursor
        assert spool.pending_entries == 30
        rest = drain(spool)
        assert spool.is_empty() and spool.pending_entries == 0
    assert first + rest == written
    assert len(list(tmp_path.glob("*.seg"))) == 1  # delivered segments are removed


def test_batches_respect_count_and_bytes_but_always_take_one(tmp_path: Path) -> None:
    with opened(tmp_path) as spool:
        spool.append(entries(0, 10, size=400))
        assert spool.read(3, 1 << 20).size == 3
        two_lines = sum(len(e.encode()) for e in entries(0, 2, size=400))
        assert spool.read(100, two_lines).size == 2
        assert spool.read(100, two_lines - 1).size == 1
        assert spool.read(100, 10).size == 1  # a record larger than the byte budget still goes


def test_a_torn_final_line_is_cut_and_earlier_lines_survive(tmp_path: Path) -> None:
    with opened(tmp_path) as spool:
        spool.append(entries(0, 5))
    segment = next(tmp_path.glob("*.seg"))
    whole = segment.read_bytes()
    with open(segment, "ab") as f:  # what a kill -9 in the middle of a write leaves
        f.write(entries(5, 1)[0].encode()[:40])
    with opened(tmp_path) as spool:
        assert spool.pending_entries == 5
        assert [e.id for e in drain(spool)] == [f"id-{i:03d}" for i in range(5)]
        spool.append(entries(6, 1))
        assert [e.id for e in drain(spool)] == ["id-006"]
    assert segment.read_bytes().startswith(whole)


def test_a_damaged_line_in_the_middle_is_reported_not_skipped_silently(tmp_path: Path) -> None:
    with opened(tmp_path) as spool:
        spool.append(entries(0, 3))
    segment = next(tmp_path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    second = data.index(b"\n") + 1
    data[second + 30] ^= 0x01  # flip one bit of the second record
    segment.write_bytes(bytes(data))
    with opened(tmp_path) as spool:
        batch = spool.read(10, 1 << 20)
        assert [e.id for e in batch.entries] == ["id-000", "id-002"]
        assert len(batch.damaged) == 1


def test_versions_ids_and_sources_round_trip(tmp_path: Path) -> None:
    written = [SpoolEntry("run", "r-1", 7, b'{"a":"tab\\tand\\nnewline"}'),
               SpoolEntry("check", "c-1", None, b"{}")]
    with opened(tmp_path) as spool:
        spool.append(written)
        assert drain(spool) == written


def test_only_one_process_owns_a_spool(tmp_path: Path) -> None:
    with opened(tmp_path), pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path).open()


def test_the_bound_refuses_the_newest_records(tmp_path: Path) -> None:
    ten = sum(len(e.encode()) for e in entries(0, 10))
    with opened(tmp_path, max_bytes=ten + 20) as spool:
        assert spool.append(entries(0, 8)) == 8
        assert spool.append(entries(8, 8)) == 2
        assert spool.refused_total == 6
        spool.commit(spool.read(5, 1 << 20))  # delivery frees room
        assert spool.append(entries(16, 8)) == 5
        assert [e.id for e in drain(spool, max_entries=100)][-1] == "id-020"


def test_a_cursor_beyond_a_shortened_segment_does_not_hide_new_records(tmp_path: Path) -> None:
    with opened(tmp_path) as spool:
        spool.append(entries(0, 4))
        spool.commit(spool.read(4, 1 << 20))
    segment = next(tmp_path.glob("*.seg"))
    segment.write_bytes(segment.read_bytes()[:100])  # a power loss ate the tail
    with opened(tmp_path) as spool:
        assert spool.is_empty()
        spool.append(entries(4, 2))
        assert [e.id for e in drain(spool)] == ["id-004", "id-005"]


def _flip_a_bit_of_line(segment: Path, index: int) -> None:
    data = bytearray(segment.read_bytes())
    start = 0
    for _ in range(index):
        start = data.index(b"\n", start) + 1
    data[start + 30] ^= 0x01
    segment.write_bytes(bytes(data))


def test_recent_appends_are_read_from_memory_older_ones_from_the_file(tmp_path: Path) -> None:
    """The lines the spool remembers are served without reading the file back (so damage done
    to the file after the append does not reach them), and only within the bound: older lines
    are read, and CRC-checked, from the file."""
    ten = entries(0, 10)
    two_lines = sum(len(e.encode()) for e in ten[-2:])
    with opened(tmp_path, recent_max_bytes=two_lines) as spool:
        spool.append(ten)
        segment = next(tmp_path.glob("*.seg"))
        _flip_a_bit_of_line(segment, 5)  # forgotten by then: read from the file
        _flip_a_bit_of_line(segment, 8)  # remembered: served from memory
        batch = spool.read(100, 1 << 20)
        assert [e.id for e in batch.entries] == [f"id-{i:03d}" for i in range(10) if i != 5]
        assert len(batch.damaged) == 1
        assert batch.entries[-2:] == ten[8:]
    with opened(tmp_path) as spool:  # a restart remembers nothing: the file says what it holds
        batch = spool.read(100, 1 << 20)
        assert len(batch.damaged) == 2


def _memory_holds(spool: Spool, bound: int) -> None:
    """The bookkeeping of remembered appends: its byte count is the sum of its lines and
    within the bound, the order deque names exactly the remembered lines, oldest first, and
    nothing before the cursor (delivered) is kept."""
    recent = spool._recent
    assert spool._recent_bytes == sum(size for size, _ in recent.values()) <= bound
    assert list(spool._recent_order) == sorted(recent) == list(recent)
    cursor = spool.cursor
    assert all(key >= (cursor.segment, cursor.offset) for key in recent)


@pytest.mark.parametrize("seed", range(40))
def test_reads_with_remembered_appends_equal_reads_of_the_file(tmp_path: Path, seed: int) -> None:
    """Model check: the same appends, reads (at the cursor and ahead of it), commits and
    restarts on a spool that remembers its appends (a small, random bound) and on one that reads
    everything from its files; every batch must be the same, start, end and entries."""
    import random

    rng = random.Random(seed)
    bound = rng.choice([1, 300, 1500, 4000, 1 << 20])
    kw_a = {"segment_bytes": rng.choice([600, 2000, 1 << 20]), "recent_max_bytes": bound}
    kw_b = {"segment_bytes": kw_a["segment_bytes"], "recent_max_bytes": 0}
    dirs = (tmp_path / "a", tmp_path / "b")
    a, b = Spool(dirs[0], **kw_a), Spool(dirs[1], **kw_b)
    a.open()
    b.open()
    n = 0
    last: tuple = (None, None)
    try:
        for _ in range(60):
            op = rng.random()
            if op < 0.35:
                batch = entries(n, rng.randint(1, 6), size=rng.randint(10, 300))
                n += len(batch)
                assert a.append(batch) == b.append(batch)
            elif op < 0.6:
                m, mb = rng.randint(1, 8), rng.randint(50, 3000)
                last = (a.read(m, mb), b.read(m, mb))
                assert last[0] == last[1]
            elif op < 0.75 and last[0] is not None:
                m, mb = rng.randint(1, 8), rng.randint(50, 3000)  # the read-ahead
                ahead = (a.read(m, mb, start=last[0].end), b.read(m, mb, start=last[1].end))
                assert ahead[0] == ahead[1]
            elif op < 0.93 and last[0] is not None:
                if last[0].start == a.cursor:
                    a.commit(last[0], durable=rng.random() < 0.5)  # the sender's way, or not
                    b.commit(last[1])
                    assert a.cursor == b.cursor and a.pending_entries == b.pending_entries
                    assert a.pending_bytes == b.pending_bytes and a.is_empty() == b.is_empty()
                last = (None, None)
            else:
                a.close()
                b.close()
                a, b = Spool(dirs[0], **kw_a), Spool(dirs[1], **kw_b)
                a.open()
                b.open()
                last = (None, None)
            _memory_holds(a, bound)
        assert drain(a) == drain(b)
    finally:
        a.close()
        b.close()


def test_a_cursor_moved_in_memory_is_written_by_sync_and_a_crash_before_replays(
        tmp_path: Path) -> None:
    """``commit(durable=False)`` (the sender's, while its next request is on the wire) moves
    the cursor without writing it: a crash before ``sync_cursor`` finds the old cursor and the
    batch again (sent twice, harmless); the segments the cursor passed stay until the sync, and
    what is pending never counts them."""
    import shutil

    spool = Spool(tmp_path / "s", segment_bytes=600)
    spool.open()
    try:
        for n in (0, 4, 8):
            spool.append(entries(n, 4))  # a segment each (600 bytes)
        first = spool.read(5, 10_000)
        rest = spool.read(100, 1 << 20, start=first.end)
        assert spool.pending_entries == 12
        segments_before = sorted((tmp_path / "s").glob("*.seg"))
        assert len(segments_before) >= 2
        spool.commit(first, durable=False)
        spool.commit(rest, durable=False)
        assert spool.is_empty() and spool.pending_bytes == 0
        assert sorted((tmp_path / "s").glob("*.seg")) == segments_before  # not yet removed
        shutil.copytree(tmp_path / "s", tmp_path / "crashed")  # the disk at a crash now
        spool.sync_cursor()
        assert len(list((tmp_path / "s").glob("*.seg"))) < len(segments_before)
    finally:
        spool.close()
    with opened(tmp_path / "crashed") as crashed:
        assert [e.id for e in drain(crashed)] == [e.id for e in entries(0, 12)]
    with opened(tmp_path / "s") as synced:
        assert synced.is_empty() and drain(synced) == []


def test_close_writes_a_cursor_moved_in_memory(tmp_path: Path) -> None:
    with opened(tmp_path) as spool:
        spool.append(entries(0, 4))
        spool.commit(spool.read(100, 1 << 20), durable=False)
    with opened(tmp_path) as spool:
        assert spool.is_empty() and drain(spool) == []
