"""Disk full under the spool (a 256 KiB tmpfs mounted for the test; needs root).

What edgewatch does: the append that cannot be made durable raises ``SpoolWriteError`` before
anything is acknowledged (the cycle catches it, rolls its run state back and reports the cycle
as not delivered); the spool keeps a reserve of free space so that delivery can still move its
cursor and delete delivered segments; nothing half-written stays behind; once there is room
again, writes are accepted and everything acknowledged is delivered exactly once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from faults_cluster_helpers import (
    check_records,
    cycle_batches,
    drain,
    install,
    run_once_into,
    settings_for,
    spool_pending,
    tally,
    tmpfs,
)

from pipeline.es import names
from pipeline.sinks.elasticsearch import ElasticsearchSink
from pipeline.sinks.spool import Spool, SpoolEntry, SpoolWriteError, opened

pytestmark = pytest.mark.integration


def _entries(n: int, size: int = 2000) -> list[SpoolEntry]:
    return [SpoolEntry("check", f"id-{i}", None, b'{"pad":"%s"}' % (b"x" * size))
            for i in range(n)]


def test_a_raw_enospc_leaves_no_torn_line(tmp_path: Path) -> None:
    # No reserve: the file system itself says ENOSPC in the middle of a write.
    with tmpfs(tmp_path / "fs", "64k") as fs:
        spool = Spool(fs / "spool", reserve_bytes=0)
        spool.open()
        taken = 0
        try:
            with pytest.raises(SpoolWriteError, match="disk full"):
                for _ in range(100):
                    taken += spool.append(_entries(3))
            pending, size = spool.pending_entries, sum(
                p.stat().st_size for p in (fs / "spool").glob("*.seg"))
        finally:
            spool.close()
        assert taken > 0 and pending == taken
        with opened(fs / "spool") as again:  # whole lines only: nothing to cut at open
            assert again.pending_entries == taken
            assert sum(p.stat().st_size for p in (fs / "spool").glob("*.seg")) == size
            batch = again.read(10_000, 1 << 30)
            assert batch.size == taken and not batch.damaged


async def test_disk_full_refuses_the_write_then_delivery_resumes_without_loss(
    es: Elasticsearch, es_url: str, es_namespace: str, tmp_path: Path,
) -> None:
    records = check_records(400)
    batches = cycle_batches(records, per_cycle=20)  # ~40 KB per cycle
    with tmpfs(tmp_path / "fs", "256k") as fs:
        # Not set up yet: nothing can leave the spool, so the disk fills.
        settings = settings_for(es_url, es_namespace, tmp_path, spool_dir=fs / "spool")
        sink = ElasticsearchSink(settings, initial_backoff_s=0.05, max_backoff_s=0.2)
        await sink.open()
        acknowledged: list = []
        refused_at = None
        try:
            for i, batch in enumerate(batches):
                try:
                    await sink.write(batch)
                except SpoolWriteError as exc:
                    refused_at = i
                    message = str(exc)
                    break
                acknowledged.extend(batch)
            assert refused_at is not None, "the tmpfs never filled"
            assert "disk full" in message and str(fs / "spool") in message
            assert "\n" not in message
            assert sink.spool.pending_entries == len(acknowledged) > 0
            # Writes keep being refused while the disk is full, and nothing is torn.
            with pytest.raises(SpoolWriteError):
                await sink.write(batches[refused_at])
            for seg in (fs / "spool").glob("*.seg"):
                assert seg.read_bytes().endswith(b"\n")

            # Room comes back: here by the cluster accepting again (setup), which lets the
            # sender commit and delete delivered segments.
            install(settings)
            await drain(sink)
            assert sink.spool.is_empty()
            later = [r for b in batches[refused_at:] for r in b]
            for batch in cycle_batches(later, per_cycle=20):
                await sink.write(batch)  # accepted again
                await drain(sink)
            acknowledged.extend(later)
        finally:
            await sink.close()
        assert spool_pending(fs / "spool") == 0
        free = os.statvfs(fs).f_bavail * os.statvfs(fs).f_frsize
        assert free > 128 * 1024  # delivered segments were removed
    t = tally(es, es_namespace, records, settings.dead_letter_dir)
    print(f"disk full: {t.line()} (refused at cycle {refused_at})")
    assert (t.stored, t.duplicated, t.lost, t.dead_lettered) == (400, 0, 0, 0)
    assert es.count(index=names.check_data_stream(es_namespace))["count"] == 400
    es.options(ignore_status=404).indices.delete(index=names.runs_index(es_namespace))


def test_run_once_with_a_full_spool_disk_reports_the_cycle_not_delivered(
    es_url: str, tmp_path: Path,
) -> None:
    """End to end: ``edgewatch run --once`` whose spool disk is full exits non-zero and says the
    cycle was not delivered (loopback only: the resolver is a closed loopback port)."""
    with tmpfs(tmp_path / "fs", "256k") as fs:
        filler = fs / "filler"
        st = os.statvfs(fs)
        filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 16 * 1024))  # 16 KiB left
        result = run_once_into(tmp_path, es_url, fs / "spool", namespace="diskfull")
        segments = list((fs / "spool").glob("*.seg"))
        assert all(p.stat().st_size == 0 for p in segments)  # nothing half-written
    assert result.returncode != 0, result.stderr
    assert "disk full" in result.stderr and "NOT DELIVERED" in result.stderr


async def test_a_full_dead_letter_disk_keeps_the_batch_until_there_is_room(
    es: Elasticsearch, es_url: str, es_namespace: str, tmp_path: Path,
) -> None:
    """The dead-letter directory on a full tmpfs: the refused document cannot be kept yet, so
    the batch stays spooled (nothing torn in the file) and goes again once there is room."""
    from pipeline.documents import Record

    records = check_records(60)
    poison = [Record(kind="check", id=f"poison-{i}", doc={**records[i].doc, "dns.surprise": i})
              for i in range(3)]
    with tmpfs(tmp_path / "fs", "64k") as fs:
        filler = fs / "filler"
        st = os.statvfs(fs)
        filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize))  # not a byte left
        settings = settings_for(es_url, es_namespace, tmp_path, dead_letter_dir=fs / "dead")
        install(settings)
        sink = ElasticsearchSink(settings, initial_backoff_s=0.05, max_backoff_s=0.2)
        await sink.open()
        try:
            await sink.write([*records[:30], *poison, *records[30:]])
            await sink.flush()
            await drain(sink, within_s=1.0)
            assert sink.spool.pending_entries > 0  # held: the dead letters are not durable
            filler.unlink()  # room again
            await drain(sink)
            assert sink.spool.is_empty()
        finally:
            await sink.close()
        lines = [x for p in (fs / "dead").glob("*.ndjson") for x in p.read_bytes().splitlines()]
        import orjson

        letters = [orjson.loads(x) for x in lines]  # every line whole
        t = tally(es, es_namespace, [*records, *poison], settings.dead_letter_dir)
    assert {x["_id"] for x in letters} == {p.id for p in poison}
    print(f"dead letters on a full disk: {t.line()} ({len(letters)} dead-letter lines)")
    assert (t.stored, t.duplicated, t.lost, t.dead_lettered) == (60, 0, 0, 3)
    es.options(ignore_status=404).indices.delete(index=names.runs_index(es_namespace))
