"""One batch on the wire: the readiness check, the bulk request, and the verdict per item.

The Elasticsearch sink's loop (``sinks.elasticsearch``) decides *when* to send and how long to
back off; this module decides *what* a request is and what each answer means. A ``Ledger``
counts the final answers and keeps what the cluster refused for good in the dead-letter file,
so that the sink's cursor may move past an item only once the ledger holds its answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_streaming_bulk

from pipeline.config import ElasticsearchSettings
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
        index = names.data_stream(entry.kind, ns) or names.runs_index(ns)
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
        return retry, not_ready


async def preflight(client: AsyncElasticsearch, settings: ElasticsearchSettings) -> None:
    """The cluster answers as Elasticsearch and the namespace's runs index exists."""
    runs_index = names.runs_index(settings.namespace)
    await detect_async(client, settings.url)
    with refusing(settings.url, f"checking index {runs_index}"):
        exists = await client.indices.exists(index=runs_index)
    if not exists:
        raise NotSetUp(f"index {runs_index} does not exist: run `edgewatch setup` "
                       f"for namespace {settings.namespace}")


async def send_bulk(client: AsyncElasticsearch, entries: list[SpoolEntry],
                    namespace: str) -> list[Result]:
    """One bulk request for ``entries``; the answers in the order of the entries."""
    # Action lines serialised here with orjson; the helper passes bytes through untouched.
    actions = [(orjson.dumps(action_header(e.kind, e.id, e.version, namespace)), e.source)
               for e in entries]
    size = sum(len(e.source) for e in entries)
    log.debug("bulk: sending %d action(s), %d source bytes", len(actions), size)
    answers: list[tuple[str, int, dict | None]] = []
    # One request per batch (the batch is already bounded); no helper retries, so answers
    # arrive in the order of the actions and our own backoff stays in charge.
    async for _ok, item in async_streaming_bulk(
        client, actions, chunk_size=len(actions), max_chunk_bytes=1 << 40,
        expand_action_callback=lambda action: action, raise_on_error=False,
        raise_on_exception=True, max_retries=0, yield_ok=True,
    ):
        op, info = next(iter(item.items()))
        answers.append((op, int(info.get("status", 500)), info.get("error")))
    if len(answers) != len(entries):
        raise RuntimeError(f"bulk answered {len(answers)} items for {len(entries)} actions")
    return [(e, op, status, err) for e, (op, status, err) in zip(entries, answers,
                                                                 strict=True)]
