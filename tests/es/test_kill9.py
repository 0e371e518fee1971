"""kill -9 of a pipeline process in the middle of a bulk request, then a restart: every record
acknowledged before the kill is stored, and nothing is stored twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from pipeline.config import ElasticsearchSettings
from pipeline.es import names
from pipeline.sinks.spool import opened

from .conftest import stored_ids
from .docgen import check_records

pytestmark = pytest.mark.integration

FEEDER = Path(__file__).resolve().parent / "feeder.py"
TOTAL = 2000
KILL_AFTER_ACKED = 400  # the first bulk that starts after this many acknowledged records


def feeder(settings: ElasticsearchSettings, state: Path, start: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(FEEDER), settings.url, settings.namespace, str(state), str(start),
         str(TOTAL)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_during_a_bulk_then_restart_loses_and_duplicates_nothing(
    es: Elasticsearch, installed: ElasticsearchSettings, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    proc = feeder(installed, state, 0)
    acked = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ACK"):
                acked = int(line.split()[1])
            elif line.startswith("BULK") and acked >= KILL_AFTER_ACKED:
                os.kill(proc.pid, signal.SIGKILL)  # while that bulk request is in flight
                break
        proc.wait(timeout=30)
        for line in proc.stdout:  # acknowledgements printed before the kill landed
            if line.startswith("ACK"):
                acked = int(line.split()[1])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert 0 < acked < TOTAL

    stream = names.check_data_stream(installed.namespace)
    before = set(stored_ids(es, stream))
    with opened(state / "spool") as spool:
        waiting = spool.pending_entries
    # Everything acknowledged is either stored or still spooled (the spool may also hold the
    # start of a write that was under way, never acknowledged).
    assert len(before) + waiting >= acked
    print(f"kill -9 with {acked} acknowledged: {len(before)} stored, {waiting} spooled")

    # Restart where the acknowledgements stopped; the unacknowledged chunk is produced again.
    again = feeder(installed, state, acked)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert "DONE" in out

    ids = stored_ids(es, stream)
    assert len(ids) == es.count(index=stream)["count"] == TOTAL
    assert set(ids) == {r.id for r in check_records(TOTAL)}
    with opened(state / "spool") as spool:
        assert spool.is_empty()
    assert not list((state / "dead-letter").glob("*.ndjson"))
