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
