"""Flat, ECS-aligned documents: what a check and a run look like once they leave the pipeline.

Documents are plain dicts with dotted keys (the way Heartbeat and ECS loggers write them), so a
sink can serialise them with orjson without walking nested objects, and Elasticsearch expands the
dots against the explicit mapping. Ids are derived from content, never random, so that replaying
a spool or re-running a cycle can never index the same fact twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

SCHEMA_VERSION = 1
CHECK_DATASET = "edgewatch.check"
RUN_DATASET = "edgewatch.run"

RecordKind = Literal["check", "run"]


@dataclass(frozen=True, slots=True)
class Record:
    """One document on its way to the sinks.

    ``kind`` decides the destination (the check data stream or the runs index), ``id`` is the
    Elasticsearch ``_id``, and ``version`` (run summaries only) orders updates of the same id so
    an older snapshot can never overwrite a newer one.
    """

    kind: RecordKind
    id: str
    doc: dict[str, Any]
    version: int | None = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> bytes:
        return dumps(self.doc)


def dumps(doc: dict[str, Any]) -> bytes:
    """orjson with the options every sink needs: UTC datetimes with a Z, no NaN surprises."""
    return orjson.dumps(doc, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def iso(ts: datetime) -> str:
    """Millisecond ISO-8601 in UTC with a Z: the one timestamp spelling in every document."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _digest(*parts: object) -> str:
    h = hashlib.sha1(usedforsecurity=False)
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def check_doc_id(check_id: str, resolver: str, address: str | None) -> str:
    """Stable ``_id`` of one check document: one per check, resolver and answer address."""
    return _digest("check", check_id, resolver, address or "-")[:32]


def check_id(observer: str, cycle_start: datetime, target: str, rtype: str) -> str:
    """One id per cycle × target × record type, shared by all its documents."""
    return _digest("cycle", observer, iso(cycle_start), target, rtype)[:20]


def answer_set_hash(addresses: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    return _digest(*sorted(addresses))[:16]
