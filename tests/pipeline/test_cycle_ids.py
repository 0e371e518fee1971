"""Ids pinned to the values the code wrote before they were spelled in one module.

Existing ndjson stores, Elasticsearch ``_id``s and the runs index refer to these ids, so a change
of their hash (a separator, a timestamp spelling, a length) would silently duplicate documents
and split runs. The expected values were computed by the code as it stood before the change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from pipeline.documents import answer_set_hash, check_doc_id, check_id
from pipeline.ids import cycle_id
from pipeline.runs import RunKey, run_id

T = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
T_PLUS2 = datetime(2026, 3, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))


def test_run_ids_are_those_of_existing_stores() -> None:
    key = RunKey("obs-1", "api.lab.test", "A", "lab-cloudflare-a", "127.60.0.10")
    assert run_id(key, T) == "490ae94acdc2b543e2d3d81f"
    v6 = RunKey("obs-1", "api.lab.test", "AAAA", "r", "::1")
    assert run_id(v6, T_PLUS2) == "80ff376ce85a53ed0a194c13"


def test_check_ids_and_document_ids_are_those_of_existing_stores() -> None:
    assert check_id("obs-1", T, "api.lab.test", "A") == "cad2107d2537e6c3e4ec"
    assert check_doc_id("abc", "r", "127.0.0.1") == "0cc939a02a0c14b828f8e45fdf162452"
    assert check_doc_id("abc", "r", None) == "f53eec7144f13c60d53437639b0287ab"
    assert answer_set_hash(["127.0.0.2", "127.0.0.1"]) == "0a065b47aff714f0"


def test_cycle_id_is_that_of_existing_stores() -> None:
    assert cycle_id("obs-1", T) == "755b49cec52697949f6f"
    assert cycle_id("obs-1", T_PLUS2) == cycle_id("obs-1", T)  # one instant, one id
