"""The Elasticsearch sink's parts that need no cluster: the per-item ledger and the spool files.

Millisecond tests of what the sink's delivery guarantees rest on — which bulk answers count as
final, which are retried, when one document is given up — and of the spool's crash repairs.
The end-to-end guarantees against a real node stay in tests/es and tests/faults.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.config import ElasticsearchSettings
from pipeline.es import names
from pipeline.sinks.deadletter import DeadLetterFile
from pipeline.sinks.es_bulk import Ledger, SinkStats
from pipeline.sinks.spool_files import (
    CURSOR_FILE,
    Position,
    SpoolEntry,
    SpoolError,
    read_cursor,
    repair_tail,
    write_cursor,
)

CONFLICT = {"type": "version_conflict_engine_exception", "reason": "exists"}
MISSING = {"type": "index_not_found_exception", "reason": "no such index"}
MAPPING = {"type": "document_parsing_exception", "reason": "bad field",
           "caused_by": {"type": "illegal_argument_exception", "reason": "not a date"}}
SERVER = {"type": "internal_error", "reason": "boom"}


def entry(rid: str, kind: str = "check") -> SpoolEntry:
    return SpoolEntry(kind=kind, id=rid, version=None if kind == "check" else 3,
                      source=orjson.dumps({"id": rid}))


def ledger(tmp_path: Path, tries: int = 3) -> Ledger:
    settings = ElasticsearchSettings(url="http://127.0.0.1:9", namespace="ledger",
                                     spool_dir=tmp_path / "spool",
                                     dead_letter_dir=tmp_path / "dead")
    return Ledger(SinkStats(), DeadLetterFile(settings.dead_letter_dir), settings, tries)


def letters(led: Ledger) -> list[dict]:
    led.dead_letters.close()
    return [orjson.loads(line) for path in sorted(led.dead_letters.directory.glob("*.ndjson"))
            for line in path.read_bytes().splitlines()]


def test_final_answers_are_counted_and_the_rest_is_retried(tmp_path: Path) -> None:
    led = ledger(tmp_path)
    a, b, c, d, e = (entry(x) for x in "abcde")
    run = entry("r", kind="run")
    retry, not_ready = led.settle([
        (a, "create", 201, None),
        (b, "create", 409, CONFLICT),  # a replay: already stored
        (run, "index", 409, CONFLICT),  # a newer version of the run is stored
        (c, "create", 400, MAPPING),  # refused for good
        (d, "create", 429, {"type": "es_rejected_execution_exception"}),
        (e, "create", 404, MISSING),
    ], {})
    assert retry == [d, e]
    assert not_ready  # the index went missing: readiness is checked again
    s = led.stats
    assert (s.delivered, s.duplicates, s.stale, s.dead_lettered) == (1, 1, 1, 1)
    (letter,) = letters(led)
    assert letter["_id"] == "c" and letter["_index"] == names.check_data_stream("ledger")
    assert letter["status"] == 400 and letter["op"] == "create"
    assert letter["error"] == {"type": "document_parsing_exception",
                               "reason": "bad field: illegal_argument_exception: not a date"}
    assert letter["document"] == {"id": "c"}


def test_a_repeated_server_fault_gives_up_on_that_document_only(tmp_path: Path) -> None:
    led = ledger(tmp_path, tries=2)
    bad, good = entry("bad"), entry("good", kind="run")
    seen: dict[int, int] = {}
    retry, not_ready = led.settle([(bad, "create", 500, SERVER), (good, "index", 503, None)],
                                  seen)
    assert retry == [bad, good] and not not_ready
    retry, _ = led.settle([(bad, "create", 500, SERVER), (good, "index", 503, None)], seen)
    assert retry == [good]  # 503 is the cluster's state, not the document's: never given up
    (letter,) = letters(led)
    assert letter["_id"] == "bad" and letter["error"]["reason"] == "gave up after 2 tries: boom"
    assert led.stats.dead_lettered == 1


def test_a_dead_letter_of_a_run_goes_to_the_runs_index(tmp_path: Path) -> None:
    led = ledger(tmp_path)
    led.dead_letter(entry("r", kind="run"), "index", 400, ("mapper_parsing_exception", "x"))
    (letter,) = letters(led)
    assert letter["_index"] == names.runs_index("ledger") and letter["kind"] == "run"


def test_repair_tail_cuts_a_torn_line_and_keeps_whole_ones(tmp_path: Path) -> None:
    path = tmp_path / "1.seg"
    whole = entry("a").encode() + entry("b").encode()
    path.write_bytes(whole + entry("c").encode()[:-7])  # killed mid-append
    repair_tail(path)
    assert path.read_bytes() == whole


def test_repair_tail_cuts_a_final_line_that_fails_its_crc(tmp_path: Path) -> None:
    path = tmp_path / "1.seg"
    good = entry("a").encode()
    damaged = bytearray(entry("b").encode())
    damaged[-3] ^= 0x01  # a flipped bit in the document
    path.write_bytes(good + bytes(damaged))
    repair_tail(path)
    assert path.read_bytes() == good
    assert SpoolEntry.decode(good[:-1]) == entry("a")


def test_the_cursor_round_trips_and_an_unreadable_one_is_named(tmp_path: Path) -> None:
    assert read_cursor(tmp_path) == Position(0, 0)  # no cursor yet: from the beginning
    write_cursor(tmp_path, Position(7, 1234))
    assert read_cursor(tmp_path) == Position(7, 1234)
    assert not (tmp_path / "cursor.tmp").exists()  # replaced by rename, not left behind
    (tmp_path / CURSOR_FILE).write_bytes(b'{"segment": 7')
    with pytest.raises(SpoolError, match=f"{CURSOR_FILE} is unreadable"):
        read_cursor(tmp_path)
