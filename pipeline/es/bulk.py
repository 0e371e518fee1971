"""Bulk actions for edgewatch records, and what each per-item answer means for delivery.

Check (and event) documents are ``create``d into their data stream (``require_data_stream``
so that a missing template can never make a plain index with guessed mappings): a 409 means
the same ``_id`` is already stored, i.e. a replay, and counts as delivered. Run summaries are
``index``ed into the runs index with ``version_type=external_gte`` and their update counter as
version: a 409 means a newer snapshot is stored, which is exactly what we want to keep.
"""

from __future__ import annotations

import enum
from typing import Any

from pipeline.es import names


class Verdict(enum.Enum):
    DELIVERED = "delivered"  # stored now
    DUPLICATE = "duplicate"  # create: this _id was already stored (a replay)
    STALE = "stale"  # run summary: a newer version is already stored
    RETRY = "retry"  # the cluster's condition (overload, outage, block): try again later
    NOT_READY = "not_ready"  # the target does not exist: `edgewatch setup` has not run
    DEAD = "dead"  # the document itself is refused: dead-letter it


def action_header(kind: str, record_id: str, version: int | None,
                  namespace: str) -> dict[str, Any]:
    if kind in names.RECORD_KINDS and (stream := names.data_stream(kind, namespace)):
        return {"create": {"_index": stream, "_id": record_id, "require_data_stream": True}}
    if kind == "run":
        if version is None:
            raise ValueError(f"run summary {record_id} has no version")
        return {"index": {"_index": names.runs_index(namespace), "_id": record_id,
                          "version": version, "version_type": "external_gte"}}
    raise ValueError(f"unknown record kind {kind!r}")


def classify(op: str, status: int, error: dict[str, Any] | None) -> Verdict:
    """The verdict on one bulk item from its op type, HTTP status and error object."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    error_type = (error or {}).get("type", "")
    if status == 409 and error_type == "version_conflict_engine_exception":
        return Verdict.DUPLICATE if op == "create" else Verdict.STALE
    if status == 404 and error_type == "index_not_found_exception":
        return Verdict.NOT_READY
    if status in (401, 403, 404, 408, 409, 429) or status >= 500:
        # Authentication, a write block, a timeout, overload or a server fault: the cluster's
        # condition, which changes; the document is fine and waits in the spool.
        return Verdict.RETRY
    return Verdict.DEAD


def error_summary(error: dict[str, Any] | None) -> tuple[str, str]:
    """(type, reason) of an item error, following ``caused_by`` to the informative part."""
    if not error:
        return "unknown", ""
    reason = str(error.get("reason", ""))
    caused = error.get("caused_by")
    if isinstance(caused, dict) and caused.get("reason"):
        reason = f"{reason}: {caused.get('type')}: {caused.get('reason')}"
    return str(error.get("type", "unknown")), reason
