"""Step three of a cycle: commit the run state, write and flush the records, or roll back.

The run state is committed just before the cycle's records go to the sinks, with the run
summaries journalled in the same transaction; the journal is cleared once every sink took them,
and replayed at the next start if the process died in between. If a sink fails the transition is
undone, so no run ever refers to documents that were not stored, and a kill -9 can never leave
the store with a run the state does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

import orjson

from pipeline.documents import Record, dumps, iso
from pipeline.runs import RunTracker
from pipeline.sinks.base import DeliveryError, Sink

log = logging.getLogger(__name__)


def journal(records: Iterable[Record]) -> str:
    """The run summaries of a cycle as the text the run state journals with its commit."""
    return dumps([{"id": r.id, "version": r.version, "ts": iso(r.timestamp), "doc": r.doc}
                  for r in records]).decode()


def unjournal(text: str) -> list[Record]:
    return [Record("run", e["id"], e["doc"], version=e["version"],
                   timestamp=datetime.fromisoformat(e["ts"])) for e in orjson.loads(text)]


async def write(sinks: Sequence[Sink], records: list[Record]) -> None:
    """Every sink takes the records; those whose writes are not durable by themselves flush."""
    for sink in sinks:
        await sink.write(records)
    for sink in sinks:
        if not getattr(sink, "durable_writes", False):
            await sink.flush()


async def deliver(tracker: RunTracker, sinks: Sequence[Sink], records: list[Record]) -> bool:
    """Commit, write, then clear the journal; on a failed write undo the commit. True if
    delivered."""
    # The state goes first, journalled with the run summaries: a kill -9 during the write
    # then leaves a journal the next process replays, never a store ahead of the state.
    tracker.commit(journal=journal(r for r in records if r.kind == "run"))
    try:
        await write(sinks, records)
    except DeliveryError as exc:  # the sink said why in one line
        log.error("not delivered, the run state of this cycle is rolled back: %s", exc)
        tracker.undo()
        return False
    except Exception:
        log.exception("a sink failed; the run state of this cycle is rolled back")
        tracker.undo()
        return False
    tracker.clear_journal()
    return True


async def resend_journal(tracker: RunTracker, sinks: Sequence[Sink]) -> None:
    """At start-up: send again the run summaries of a cycle whose write was not confirmed."""
    pending = tracker.journal()
    if pending is None:
        return
    # The previous process died between committing a cycle's state and confirming its
    # write: its run summaries are sent again (same ids and versions, so at most a
    # repeated line in the ndjson store, a no-op in Elasticsearch).
    records = unjournal(pending)
    log.warning("re-sending %d run summaries of a cycle whose write was not confirmed",
                len(records))
    try:
        await write(sinks, records)
    except Exception:
        log.exception("re-sending the journalled run summaries failed; kept for later")
    else:
        tracker.clear_journal()
