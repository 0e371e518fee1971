"""The Elasticsearch sink: spool first, then bulk-index in order, and never lose or duplicate.

``write`` appends the records to the durable spool (fsynced) and returns: that is the
acknowledgement. A background sender reads the spool in order, in batches bounded by count and
bytes (or whatever has waited ``flush_interval``), and sends each batch with
``elasticsearch.helpers.async_streaming_bulk``. Only when every item of a batch has a final
answer — stored, already there (409 on ``create``), superseded (409 on an external version) or
dead-lettered — does the spool's cursor move past it. Everything else (connection errors, 429,
5xx, write blocks, a missing template) is retried with exponential backoff while new records
keep accumulating in the spool, so an outage of any length short of the spool bound costs
nothing but delay. Why write-ahead rather than spool-on-failure: see docs/ELASTICSEARCH.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import elastic_transport
import orjson
from elasticsearch import ApiError, AsyncElasticsearch
from elasticsearch.helpers import async_streaming_bulk

from pipeline.config import Config, ConfigError, ElasticsearchSettings
from pipeline.documents import Record
from pipeline.es import names
from pipeline.es.bulk import Verdict, action_header, classify, error_summary
from pipeline.es.client import make_async_client, redact_url
from pipeline.es.cluster import (
    ClusterRefused,
    ClusterUnauthorized,
    detect_async,
    refusing,
    translate,
)
from pipeline.sinks.base import DeliveryError
from pipeline.sinks.deadletter import DeadLetter, DeadLetterFile
from pipeline.sinks.spool import DEFAULT_SEGMENT_BYTES, Batch, Spool, SpoolEntry, human_bytes

log = logging.getLogger(__name__)

REMIND_EVERY_S = 60.0
HEALTH_EVERY_S = 60.0
# How long the first write waits for the first contact with the cluster (started by open), so
# that a refusal of the credentials is known before the first cycle is acknowledged. Bounded and
# paid once: a cluster that does not answer must not hold up probing.
FIRST_CONTACT_WAIT_S = 0.5


class NotSetUp(RuntimeError):
    """The runs index or the check template is missing: ``edgewatch setup`` has not run."""


class DeliveryRefused(ClusterUnauthorized, DeliveryError):
    """The cluster rejects the sink's credentials (401) or privileges (403): records written now
    would only pile up in the spool, so ``write`` refuses them (not acknowledged) until the
    cluster accepts again. One line, naming the cluster and what to check; never a secret.

    The cycle treats it like any failing sink (run state rolled back, cycle not delivered), so
    ``edgewatch run`` ends non-zero; ``ElasticsearchSink.refusal`` holds the same refusal for a
    caller that wants to stop at once.
    """


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


class ElasticsearchSink:
    """``Sink`` into the check data stream and the runs index of one namespace."""

    name = "elasticsearch"
    # write() returns only once the records are fsynced in the spool; delivery runs in the
    # background, so the cycle need not wait for the cluster (an outage must not slow probing).
    durable_writes = True

    def __init__(
        self,
        settings: ElasticsearchSettings,
        *,
        client_factory: Callable[[ElasticsearchSettings], AsyncElasticsearch] = make_async_client,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        max_server_error_tries: int = 8,
    ) -> None:
        self.settings = settings
        self._client_factory = client_factory
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_server_error_tries = max_server_error_tries
        self.spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes,
                           segment_bytes=segment_bytes)
        self.dead_letters = DeadLetterFile(settings.dead_letter_dir)
        self.stats = SinkStats()
        self.client: AsyncElasticsearch | None = None
        self._sender: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # new records, a flush or close
        self._kick = asyncio.Event()  # flush or close: cut a backoff short
        self._progress = asyncio.Condition()
        self._flushing = 0
        self._closing = False
        self._ready = False
        self._oldest_pending_at: float | None = None
        self._down_since: float | None = None
        self._down_kind = ""
        self._last_reminder = 0.0
        self.refusal: ClusterUnauthorized | None = None  # credentials/privileges rejected
        self._first_contact = asyncio.Event()
        self._waited_first_contact = False
        self.health_every_s = HEALTH_EVERY_S
        self.health: str | None = None  # last cluster health status seen (green/yellow/red)
        self._health_checked = -HEALTH_EVERY_S

    @classmethod
    def from_config(cls, config: Config, **kwargs: object) -> ElasticsearchSink:
        if config.elasticsearch is None:
            raise ConfigError([("elasticsearch.url", "the elasticsearch sink needs a cluster")])
        return cls(config.elasticsearch, **kwargs)  # type: ignore[arg-type]

    @property
    def check_stream(self) -> str:
        return names.check_data_stream(self.settings.namespace)

    @property
    def runs_index(self) -> str:
        return names.runs_index(self.settings.namespace)

    # -- Sink protocol -----------------------------------------------------------------------

    async def open(self) -> None:
        # Misconfigurations raise, each in one line: SpoolLocked (another process owns the
        # spool), SpoolError, ClientSettingsError (a URL or CA file the client cannot use).
        self.spool.open()
        try:
            self.client = self._client_factory(self.settings)
        except Exception:
            self.spool.close()
            raise
        if not self.spool.is_empty():
            self._oldest_pending_at = time.monotonic() - self.settings.flush_interval_s
        self._sender = asyncio.create_task(self._run_sender(), name="elasticsearch-sender")
        log.info("elasticsearch sink: %s → %s and %s (spool %s)",
                 redact_url(self.settings.url), self.check_stream, self.runs_index,
                 self.settings.spool_dir)

    async def write(self, records: Sequence[Record]) -> None:
        """Spool the records durably; they are acknowledged when this returns."""
        if self._sender is None or self._closing:
            raise RuntimeError("ElasticsearchSink.write() outside open()/close()")
        if not self._waited_first_contact:
            self._waited_first_contact = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_contact.wait(), FIRST_CONTACT_WAIT_S)
        if self.refusal is not None:
            raise DeliveryRefused(f"elasticsearch sink: {self.refusal}; records not accepted")
        entries: list[SpoolEntry] = []
        for record in records:
            entry = self._entry(record)
            if entry is not None:
                entries.append(entry)
        self.stats.written += len(records)
        was_empty = self.spool.is_empty()
        taken = self.spool.append(entries)
        self.stats.spooled += taken
        self.stats.refused += len(entries) - taken
        if taken:
            if was_empty or self._oldest_pending_at is None:
                self._oldest_pending_at = time.monotonic()
            self._wake.set()
        self.dead_letters.sync()

    async def flush(self) -> None:
        """Return when everything spooled is delivered, or the cluster failed an attempt.

        Either way every record written so far is durable (the spool is fsynced on write);
        flush only spares the caller the flush interval when the cluster is there.
        """
        if self._sender is None or self.spool.is_empty():
            return
        failures_before = self.stats.failed_attempts
        self._flushing += 1
        try:
            self._wake.set()
            self._kick.set()
            async with self._progress:
                await self._progress.wait_for(
                    lambda: self.spool.is_empty()
                    or self.stats.failed_attempts != failures_before
                    or self._sender is None or self._sender.done())
        finally:
            self._flushing -= 1

    async def close(self) -> None:
        if self._sender is None:
            return
        # A last delivery attempt, bounded: a long backlog stays spooled (it is durable) rather
        # than holding up a shutdown.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), timeout=self.settings.request_timeout)
        self._closing = True
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender
        self._sender = None
        self.dead_letters.close()
        pending = self.spool.pending_entries
        self.spool.close()
        if self.client is not None:
            await self.client.close()
            self.client = None
        s = self.stats
        log.info("elasticsearch sink closed: %d written, %d delivered, %d already stored, "
                 "%d superseded, %d dead-lettered, %d refused (spool full), %d still spooled",
                 s.written, s.delivered, s.duplicates, s.stale, s.dead_lettered, s.refused,
                 pending)
        if pending:
            log.warning("%d record(s) stay in the spool %s and are sent on the next start",
                        pending, self.settings.spool_dir)

    # -- records → spool ---------------------------------------------------------------------

    def _entry(self, record: Record) -> SpoolEntry | None:
        ns = self.settings.namespace
        if record.kind == "check" and record.doc.get("data_stream.namespace", ns) != ns:
            # a store loaded into another namespace: the constant_keyword must match the stream
            record = replace(record, doc={**record.doc, "data_stream.namespace": ns})
        source = record.to_json()
        try:
            action_header(record.kind, record.id, record.version, self.settings.namespace)
            if not record.id or any(c in record.id for c in "\t\n\r"):
                raise ValueError(f"record id {record.id!r} is empty or has a tab or newline")
        except ValueError as exc:
            self._dead_letter(record.kind, record.id, "-", 0, "invalid_record", str(exc), source)
            return None
        return SpoolEntry(kind=record.kind, id=record.id, version=record.version, source=source)

    def _dead_letter(self, kind: str, rid: str, op: str, status: int, error_type: str,
                     reason: str, source: bytes) -> None:
        index = self.check_stream if kind == "check" else self.runs_index
        self.dead_letters.add(DeadLetter(kind=kind, id=rid, index=index, op=op, status=status,
                                         error_type=error_type, reason=reason, source=source))
        self.stats.dead_lettered += 1

    # -- sender ------------------------------------------------------------------------------

    async def _run_sender(self) -> None:
        await self._contact()
        while True:
            try:
                if self.refusal is not None and self.spool.is_empty():
                    # Nothing to send proves nothing: ask again now and then, so that fixed
                    # credentials (a key re-enabled on the cluster) are noticed.
                    await self._backoff(self.max_backoff_s)
                    await self._contact()
                    continue
                await self._send_next_batch()
            except asyncio.CancelledError:
                raise
            except OSError as exc:  # a full or failing disk (spool cursor, dead letters)
                log.error("elasticsearch sink: cannot write %s (%s); the batch stays spooled "
                          "and is tried again", exc.filename or "a file",
                          exc.strerror or exc)
                self.stats.failed_attempts += 1
                await self._notify()
                await self._backoff(self.max_backoff_s)
            except Exception:  # a bug must not stop delivery for good
                log.exception("elasticsearch sink: unexpected error; the batch stays spooled "
                              "and is tried again")
                self.stats.failed_attempts += 1
                await self._notify()
                await self._backoff(self.max_backoff_s)

    async def _send_next_batch(self) -> None:
        await self._until_due()
        batch = self.spool.read(self.settings.bulk_max_docs, self.settings.bulk_max_bytes)
        if batch.size == 0:
            self.spool.commit(batch)  # may step over an empty segment
            if self.spool.is_empty():
                self._oldest_pending_at = None
            else:  # an incomplete line at the tail: wait for the rest rather than spin
                await self._backoff(1.0)
            await self._notify()
            return
        await self._deliver(batch)
        self.spool.commit(batch)
        if self.spool.is_empty():
            self._oldest_pending_at = None
        await self._notify()

    async def _until_due(self) -> None:
        s = self.settings
        while True:
            if not self.spool.is_empty():
                if self._flushing or self._closing:
                    return
                if (self.spool.pending_entries >= s.bulk_max_docs
                        or self.spool.pending_bytes >= s.bulk_max_bytes):
                    return
                oldest = self._oldest_pending_at or time.monotonic()
                wait = oldest + s.flush_interval_s - time.monotonic()
                if wait <= 0:
                    return
            else:
                wait = None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    async def _contact(self) -> None:
        """First contact at open, so that refused credentials are known before any write."""
        try:
            await self._preflight()
            self._accepted()
        except ClusterUnauthorized as exc:
            self._refused(exc)
        except NotSetUp:
            self._accepted()  # GET / and the index check got through: credentials are fine
        except Exception as exc:  # unreachable, not set up…: the delivery loop reports it
            log.debug("elasticsearch sink: first contact failed: %s", exc)
        finally:
            self._first_contact.set()

    def _refused(self, exc: ClusterUnauthorized) -> None:
        if self.refusal is None:
            log.error("elasticsearch delivery refused: %s; new records are not accepted until "
                      "the cluster accepts the credentials", exc)
        self.refusal = exc

    def _accepted(self) -> None:
        if self.refusal is not None:
            log.warning("elasticsearch accepts the credentials again; records are accepted")
            self.refusal = None

    async def _deliver(self, batch: Batch) -> None:
        """Send until every entry of the batch has a final verdict."""
        for raw in batch.damaged:
            self._dead_letter("unknown", "-", "-", 0, "spool_damaged",
                              "spool line failed its CRC check", raw)
        entries = list(batch.entries)
        server_errors: dict[int, int] = {}
        attempt = 0
        while entries:
            try:
                if not self._ready:
                    await self._preflight()
                results = await self._send(entries)
            except ClusterUnauthorized as exc:
                self._refused(exc)
                self._trouble(str(exc), loud=True, kind="refused")
            except (ClusterRefused, NotSetUp) as exc:
                self._trouble(str(exc), loud=True, kind=type(exc).__name__)
            except ApiError as exc:
                refused = translate(exc, self.settings.url, "sending a bulk request")
                if isinstance(refused, ClusterUnauthorized):
                    self._refused(refused)
                    self._trouble(str(refused), loud=True, kind="refused")
                else:
                    self._trouble(f"bulk request answered HTTP {exc.status_code}: "
                                  f"{exc.message}", kind=f"http {exc.status_code}")
            except elastic_transport.TransportError as exc:
                self._trouble(f"cannot reach {redact_url(self.settings.url)}: {exc.message}",
                              kind="unreachable")
            else:
                self._accepted()
                entries = self._settle(results, server_errors)
                self.dead_letters.sync()
                await self._check_health()
                if not entries:
                    self._recovered()
                    return
                self._trouble(f"{len(entries)} item(s) of the batch must be retried",
                              kind="items")
            attempt += 1
            self.stats.failed_attempts += 1
            await self._notify()
            await self._check_health()  # after the notify: a waiting flush() returns first
            delay = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
            await self._backoff(delay * random.uniform(0.5, 1.0))

    def _settle(self, results: list[tuple[SpoolEntry, str, int, dict | None]],
                server_errors: dict[int, int]) -> list[SpoolEntry]:
        """Count final answers, dead-letter refused documents; return what must be retried."""
        retry: list[SpoolEntry] = []
        for entry, op, status, error in results:
            verdict = classify(op, status, error)
            if verdict is Verdict.DELIVERED:
                self.stats.delivered += 1
            elif verdict is Verdict.DUPLICATE:
                self.stats.duplicates += 1
            elif verdict is Verdict.STALE:
                self.stats.stale += 1
            elif verdict is Verdict.DEAD:
                error_type, reason = error_summary(error)
                self._dead_letter(entry.kind, entry.id, op, status, error_type, reason,
                                  entry.source)
            else:
                if verdict is Verdict.NOT_READY:
                    self._ready = False
                if status == 500:
                    # A server fault on one document, repeated: give up on that document only.
                    tries = server_errors[id(entry)] = server_errors.get(id(entry), 0) + 1
                    if tries >= self.max_server_error_tries:
                        error_type, reason = error_summary(error)
                        self._dead_letter(entry.kind, entry.id, op, status, error_type,
                                          f"gave up after {tries} tries: {reason}", entry.source)
                        continue
                retry.append(entry)
        return retry

    async def _preflight(self) -> None:
        assert self.client is not None
        await detect_async(self.client, self.settings.url)
        with refusing(self.settings.url, f"checking index {self.runs_index}"):
            exists = await self.client.indices.exists(index=self.runs_index)
        if not exists:
            raise NotSetUp(f"index {self.runs_index} does not exist: run `edgewatch setup` "
                           f"for namespace {self.settings.namespace}")
        self._ready = True

    async def _send(self, entries: list[SpoolEntry]
                    ) -> list[tuple[SpoolEntry, str, int, dict | None]]:
        assert self.client is not None
        ns = self.settings.namespace
        # Action lines serialised here with orjson; the helper passes bytes through untouched.
        actions = [(orjson.dumps(action_header(e.kind, e.id, e.version, ns)), e.source)
                   for e in entries]
        size = sum(len(e.source) for e in entries)
        log.debug("bulk: sending %d action(s), %d source bytes", len(actions), size)
        self.stats.bulk_requests += 1
        answers: list[tuple[str, int, dict | None]] = []
        # One request per batch (the batch is already bounded); no helper retries, so answers
        # arrive in the order of the actions and our own backoff stays in charge.
        async for _ok, item in async_streaming_bulk(
            self.client, actions, chunk_size=len(actions), max_chunk_bytes=1 << 40,
            expand_action_callback=lambda action: action, raise_on_error=False,
            raise_on_exception=True, max_retries=0, yield_ok=True,
        ):
            op, info = next(iter(item.items()))
            answers.append((op, int(info.get("status", 500)), info.get("error")))
        if len(answers) != len(entries):
            raise RuntimeError(f"bulk answered {len(answers)} items for {len(entries)} actions")
        return [(e, op, status, err) for e, (op, status, err) in zip(entries, answers,
                                                                     strict=True)]

    def _trouble(self, why: str, loud: bool = False, kind: str = "") -> None:
        """Log a delivery problem once when it starts or changes kind, then once a minute."""
        now = time.monotonic()
        level = logging.ERROR if loud else logging.WARNING
        pending = self.spool.pending_entries
        if self._down_since is None or kind != self._down_kind:
            if self._down_since is None:
                self._down_since = now
            self._last_reminder = now
            self._down_kind = kind
            log.log(level, "elasticsearch delivery paused: %s; %d record(s) (%s) wait in "
                    "the spool and are retried with backoff", why, pending,
                    human_bytes(self.spool.pending_bytes))
        elif now - self._last_reminder >= REMIND_EVERY_S:
            self._last_reminder = now
            log.log(level, "elasticsearch delivery still paused after %.0fs: %s; %d record(s) "
                    "(%s) spooled", now - self._down_since, why, pending,
                    human_bytes(self.spool.pending_bytes))

    def _recovered(self) -> None:
        if self._down_since is not None:
            log.warning("elasticsearch delivery resumed after %.0fs; %d record(s) still spooled",
                        time.monotonic() - self._down_since, self.spool.pending_entries)
            self._down_since = None
            self._down_kind = ""

    async def _check_health(self) -> None:
        """Cluster health, at most every ``health_every_s``; logged only when it changes.

        Yellow or red never stops delivery (writes that cannot be stored come back as retries
        per item); the line tells an operator why delivery may slow down or stall.
        """
        now = time.monotonic()
        if self.client is None or now - self._health_checked < self.health_every_s:
            return
        self._health_checked = now
        try:
            body = (await self.client.options(request_timeout=min(
                5.0, self.settings.request_timeout)).cluster.health()).body
        except Exception as exc:  # health is advice: never let it disturb delivery
            log.debug("elasticsearch sink: cluster health unavailable: %s", exc)
            return
        status = str(body.get("status", "unknown"))
        if status == self.health:
            return
        previous, self.health = self.health, status
        if status == "green":
            if previous is not None:
                log.warning("elasticsearch cluster health is green again (was %s)", previous)
            return
        log.warning("elasticsearch cluster health is %s%s: %s unassigned shard(s), %s "
                    "initializing; delivery carries on and retries what cannot be stored",
                    status, f" (was {previous})" if previous else "",
                    body.get("unassigned_shards", "?"), body.get("initializing_shards", "?"))

    async def _backoff(self, delay: float) -> None:
        self._kick.clear()
        if self._flushing or self._closing:
            delay = min(delay, 0.05)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kick.wait(), delay)
