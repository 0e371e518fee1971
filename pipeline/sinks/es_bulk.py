"""One batch on the wire: the readiness check, the bulk request, and the verdict per item.

The Elasticsearch sink's loop (``sinks.elasticsearch``) decides *when* to send and how long to
back off; this module decides *what* a request is and what each answer means. A ``Ledger``
counts the final answers and keeps what the cluster refused for good in the dead-letter file,
so that the sink's cursor may move past an item only once the ledger holds its answer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import orjson
from elasticsearch import AsyncElasticsearch

from pipeline.config import ElasticsearchSettings
from pipeline.documents import Record
from pipeline.es import names
from pipeline.es.bulk import Verdict, action_header, classify, error_summary
from pipeline.es.cluster import detect_async, refusing
from pipeline.sinks.deadletter import DeadLetter, DeadLetterFile
from pipeline.sinks.spool import SpoolEntry

# The sink's own logger: operators (and the tests) follow one name for the whole sink.
log = logging.getLogger("pipeline.sinks.elasticsearch")

# One bulk item's answer: the entry sent, the operation, its HTTP status and error (if any).
Result = tuple[SpoolEntry, str, int, dict | None]


class NotSetUp(RuntimeError):
    """The runs index or the check template is missing: ``edgewatch setup`` has not run."""


@dataclass
class SinkStats:
    written: int = 0  # records handed to write()
    spooled: int = 0  # of those, acknowledged into the spool
    refused: int = 0  # spool full: not taken (logged as errors)
    delivered: int = 0  # stored by Elasticsearch
    duplicates: int = 0  # create answered 409: already stored (a replay)
    stale: int = 0  # run summary answered 409: a newer version is stored
    dead_lettered: int = 0  # refused for good, kept in the dead-letter file
    bulk_requests: int = 0
    failed_attempts: int = 0  # bulk attempts that left something to retry
    last_delivered_at: float | None = None  # unix time of the last bulk that stored anything


@dataclass
class Ledger:
    """Where final answers go: counted in ``stats``, refusals kept in ``dead_letters``."""

    stats: SinkStats
    dead_letters: DeadLetterFile
    settings: ElasticsearchSettings
    max_server_error_tries: int

    def dead_letter(self, entry: SpoolEntry, op: str, status: int,
                    summary: tuple[str, str]) -> None:
        """Keep ``entry`` for good; ``summary`` is the (error type, reason) pair."""
        ns = self.settings.namespace
        route = names.KINDS.get(entry.kind)
        index = route.target(ns) if route else "-"
        self.dead_letters.add(DeadLetter(kind=entry.kind, id=entry.id, index=index, op=op,
                                         status=status, error_type=summary[0],
                                         reason=summary[1], source=entry.source))
        self.stats.dead_lettered += 1

    def settle(self, results: list[Result],
               server_errors: dict[int, int]) -> tuple[list[SpoolEntry], bool]:
        """Count final answers, dead-letter refused documents; return what must be retried
        and whether an answer said the namespace is not set up (so readiness is checked
        again before the next attempt)."""
        retry: list[SpoolEntry] = []
        not_ready = False
        before = self.stats.delivered + self.stats.duplicates + self.stats.stale
        for entry, op, status, error in results:
            verdict = classify(op, status, error)
            if verdict is Verdict.DELIVERED:
                self.stats.delivered += 1
            elif verdict is Verdict.DUPLICATE:
                self.stats.duplicates += 1
            elif verdict is Verdict.STALE:
                self.stats.stale += 1
            elif verdict is Verdict.DEAD:
                self.dead_letter(entry, op, status, error_summary(error))
            else:
                not_ready = not_ready or verdict is Verdict.NOT_READY
                if status == 500:
                    # A server fault on one document, repeated: give up on that document only.
                    tries = server_errors[id(entry)] = server_errors.get(id(entry), 0) + 1
                    if tries >= self.max_server_error_tries:
                        error_type, reason = error_summary(error)
                        self.dead_letter(entry, op, status,
                                         (error_type, f"gave up after {tries} tries: {reason}"))
                        continue
                retry.append(entry)
        if self.stats.delivered + self.stats.duplicates + self.stats.stale > before:
            self.stats.last_delivered_at = time.time()  # the metrics' last successful delivery
        return retry, not_ready


def unsendable(record: Record) -> str | None:
    """Why no bulk action can be built for ``record`` (None: it can). The same checks as
    ``action_header``, without building the header once per record only to throw it away."""
    kind = names.KINDS.get(record.kind)
    if kind is None:
        return f"unknown record kind {record.kind!r}"
    if not kind.data_stream and record.version is None:
        return f"run summary {record.id} has no version"
    rid = record.id
    if not rid or "\t" in rid or "\n" in rid or "\r" in rid:
        return f"record id {rid!r} is empty or has a tab or newline"
    return None


def spool_entry(record: Record, namespace: str) -> tuple[SpoolEntry, str | None]:
    """The spool entry of ``record`` and why it cannot be sent (None: it can)."""
    if record.kind != "run" and record.doc.get("data_stream.namespace", namespace) != namespace:
        # a store loaded into another namespace: the constant_keyword must match the stream
        record = replace(record, doc={**record.doc, "data_stream.namespace": namespace})
    entry = SpoolEntry(kind=record.kind, id=record.id, version=record.version,
                       source=record.to_json())
    return entry, unsendable(record)


async def preflight(client: AsyncElasticsearch, settings: ElasticsearchSettings) -> None:
    """The cluster answers as Elasticsearch and the namespace's runs index exists."""
    runs_index = names.runs_index(settings.namespace)
    await detect_async(client, settings.url)
    with refusing(settings.url, f"checking index {runs_index}"):
        exists = await client.indices.exists(index=runs_index)
    if not exists:
        raise NotSetUp(f"index {runs_index} does not exist: run `edgewatch setup` "
                       f"for namespace {settings.namespace}")


# The response carries only what the verdicts need: one small object per item instead of the
# full answer (index, _id, _version, shards, seq_no…), which is most of the client's parse time.
BULK_FILTER_PATH = "errors,items.*.status,items.*.error"


async def send_bulk(client: AsyncElasticsearch, entries: list[SpoolEntry],
                    namespace: str, body: bytes | None = None) -> list[Result]:
    """One bulk request for ``entries``; the answers in the order of the entries.

    The request body is assembled here from the spooled bytes (one action line and the stored
    source per entry) and passed to the client as bytes, which it sends untouched: no document
    is parsed or serialised again, and the helper's per-action machinery (chunker, action
    expansion, result pairing) is not needed for a batch that is already bounded. ``body``,
    when given, is that body built beforehand (``bulk_body`` of exactly these entries).
    """
    if body is None:
        body = bulk_body(entries, namespace)
    log.debug("bulk: sending %d action(s), %d bytes", len(entries), len(body))
    # No helper retries, so our own backoff stays in charge of what is sent again.
    resp = await client.bulk(body=body, filter_path=BULK_FILTER_PATH)
    items = resp.body.get("items") or []
    if len(items) != len(entries):
        raise RuntimeError(f"bulk answered {len(items)} items for {len(entries)} actions")
    results: list[Result] = []
    for entry, item in zip(entries, items, strict=True):
        op, info = next(iter(item.items()))
        results.append((entry, op, int(info.get("status", 500)), info.get("error")))
    return results


def bulk_body(entries: list[SpoolEntry], namespace: str) -> bytes:
    """The ndjson body: each entry's action line (``action_line``) and its source."""
    parts: list[bytes] = []
    lines = action_lines(namespace)
    for e in entries:
        parts.append(lines(e.kind, e.id, e.version))
        parts.append(e.source)
    parts.append(b"")
    return b"\n".join(parts)


def action_lines(namespace: str):
    """A function (kind, id, version) → the action line, identical to
    ``orjson.dumps(action_header(...))`` but built from a per-kind template: the header of
    every entry differs only in its ``_id`` (and a run summary's version)."""
    templates: dict[str, tuple[bytes, bytes, bool]] = {}

    def line(kind: str, record_id: str, version: int | None) -> bytes:
        t = templates.get(kind)
        if t is None:
            t = templates[kind] = _template(kind, namespace)
        head, tail, versioned = t
        rid = orjson.dumps(record_id)
        if versioned:
            if version is None:
                raise ValueError(f"run summary {record_id} has no version")
            return b"%s%s%s%d%s" % (head, rid, b',"version":', version, tail)
        return head + rid + tail

    return line


_MARK = "\x00id\x00"


def _template(kind: str, namespace: str) -> tuple[bytes, bytes, bool]:
    """(bytes before the _id value, bytes after it, whether a version goes in between)."""
    header = action_header(kind, _MARK, 0, namespace)
    op, meta = next(iter(header.items()))
    versioned = "version" in meta
    rest = {k: v for k, v in meta.items() if k not in ("_index", "_id", "version")}
    head = orjson.dumps({op: {"_index": meta["_index"], "_id": None}})[:-len(b"null}}")]
    tail = orjson.dumps(rest)[1:] if rest else b"}"
    tail = (b"," + tail if rest else tail) + b"}"
    return head, tail, versioned
