"""The Elasticsearch sink: spool first, then bulk-index, and never lose or duplicate.

``write`` appends the records to the durable spool (fsynced) and returns: that is the
acknowledgement. A background sender reads the spool in order, in batches bounded by count and
bytes (or whatever has waited ``flush_interval``), and sends each batch as one ``_bulk``
request assembled from the spooled bytes (``es_bulk``), the next batch's request going out
while the current one is indexed (at most two in flight). Only when every item of a batch has a
final answer — stored, already there (409 on ``create``), superseded (409 on an external
version) or dead-lettered — does the spool's cursor move past it. Everything else (connection
errors, 429, 5xx, write blocks, a missing template) is retried with exponential backoff while
new records keep accumulating in the spool, so an outage of any length short of the spool bound
costs nothing but delay. Why write-ahead rather than spool-on-failure: see docs/ELASTICSEARCH.md.
The request and its verdicts per item live in ``es_bulk``; what is logged, in ``es_watch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence

import elastic_transport
from elasticsearch import ApiError, AsyncElasticsearch

from pipeline.config import Config, ConfigError, ElasticsearchSettings
from pipeline.documents import Record
from pipeline.es import names
from pipeline.es.client import make_async_client, redact_url
from pipeline.es.cluster import ClusterRefused, ClusterUnauthorized, translate
from pipeline.sinks import es_bulk
from pipeline.sinks.base import DeliveryError
from pipeline.sinks.deadletter import DeadLetterFile
from pipeline.sinks.es_bulk import Ledger, NotSetUp, Result, SinkStats
from pipeline.sinks.es_readahead import ReadAhead, while_sending
from pipeline.sinks.es_watch import DeliveryWatch
from pipeline.sinks.spool import DEFAULT_SEGMENT_BYTES, Batch, Spool, SpoolEntry

log = logging.getLogger(__name__)

__all__ = ["DeliveryRefused", "ElasticsearchSink", "NotSetUp", "SinkStats"]
# How long the first write waits for the first contact with the cluster (started by open), so
# that a refusal of the credentials is known before the first cycle is acknowledged. Bounded and
# paid once: a cluster that does not answer must not hold up probing.
FIRST_CONTACT_WAIT_S = 0.5


class DeliveryRefused(ClusterUnauthorized, DeliveryError):
    """The cluster rejects the sink's credentials (401) or privileges (403): records written now
    would only pile up in the spool, so ``write`` refuses them (not acknowledged) until the
    cluster accepts again. One line, naming the cluster and what to check; never a secret.

    The cycle treats it like any failing sink (run state rolled back, cycle not delivered), so
    ``edgewatch run`` ends non-zero; ``ElasticsearchSink.refusal`` holds the same refusal for a
    caller that wants to stop at once.
    """


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
        self.watch = DeliveryWatch(self.spool)
        # The batch after the one being delivered, already on the wire (``_send_ahead``), and
        # whether batches go through at their first request (False from a failed or partly
        # refused request until a batch is delivered in full at its first).
        self._queued: tuple[Batch, asyncio.Task[list[Result]]] | None = None
        self._first_tries_pass = True
        self._ahead = ReadAhead(self.spool, settings.bulk_max_docs, settings.bulk_max_bytes,
                                lambda entries: es_bulk.bulk_body(entries, settings.namespace))
        self._ledger = Ledger(self.stats, self.dead_letters, settings, max_server_error_tries)
        self.refusal: ClusterUnauthorized | None = None  # credentials/privileges rejected
        self._first_contact = asyncio.Event()
        self._waited_first_contact = False

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

    @property
    def health_every_s(self) -> float:  # between bulk attempts (es_health); tests shorten it
        return self.watch.health_every_s

    @health_every_s.setter
    def health_every_s(self, value: float) -> None:
        self.watch.health_every_s = value

    @property
    def health(self) -> str | None:  # the last cluster health status seen, None before any
        return self.watch.health

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
        self.watch.cluster.after_cycle(self.client, self.settings.request_timeout)

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
        await self.watch.cluster.settle()
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender
        self._sender = None
        await self._drop_queued()
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
        entry, problem = es_bulk.spool_entry(record, self.settings.namespace)
        if problem is not None:
            self._ledger.dead_letter(entry, "-", 0, ("invalid_record", problem))
            return None
        return entry

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
        batch, sent = await self._take_queued()
        if batch is None:
            await self._until_due()
            batch = self._ahead.take()
        if batch.size == 0:
            self.spool.commit(batch)  # may step over an empty segment
            if self.spool.is_empty():
                self._oldest_pending_at = None
            else:  # an incomplete line at the tail: wait for the rest rather than spin
                await self._backoff(1.0)
            await self._notify()
            return
        await self._deliver(batch, sent)
        # The cursor moves now; its file is written while the next request is on the wire
        # (``_send``), or here when nothing follows: two fsyncs fewer between two requests.
        self.spool.commit(batch, durable=False)
        if self.spool.is_empty():
            self.spool.sync_cursor()
            self._oldest_pending_at = None
        await self._notify()

    async def _until_due(self) -> None:
        s = self.settings
        while True:
            if not self.spool.is_empty():
                if (self.spool.pending_entries >= s.bulk_max_docs
                        or self.spool.pending_bytes >= s.bulk_max_bytes):
                    return
                wait = self._due_in()
                if wait <= 0:
                    return
            else:
                wait = None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _due_in(self) -> float:
        """Seconds until a batch short of the bounds is sent anyway (0: now)."""
        if self._flushing or self._closing:
            return 0.0
        oldest = self._oldest_pending_at or time.monotonic()
        return oldest + self.settings.flush_interval_s - time.monotonic()

    # -- a second request in flight ----------------------------------------------------------
    # With one request at a time the node indexes one batch while the client waits, and the
    # client's own work (the answer's verdicts, the cursor, the producer's writes on the same
    # loop) happens while the node waits. Raw ``_bulk`` from two threads on this machine: 1.06–
    # 1.59x one thread's docs/s. So the batch read ahead is sent as soon as its body is built,
    # if it is due (full, or whatever waited the flush interval) and batches go through at
    # their first request: after a failed or partly refused request, one at a time again (its
    # retry waits for the answer to the request already ahead, ``_queued_answered``) until a
    # batch is delivered in full at its first, so an overloaded cluster is not sent more.
    # Nothing else about delivery changes: verdicts are settled and the cursor moves strictly
    # in batch order, a batch's retries stay one request at a time, and order between two
    # adjacent batches does not matter to what is stored (checks are ``create`` with their own
    # ``_id``; run summaries carry an external version, the newest wins whichever arrives last).

    def _send_ahead(self, current: Batch) -> None:
        """Put the batch read ahead of ``current`` on the wire now, if it is due."""
        nxt = self._ahead.ready
        if (nxt is None or self._queued is not None or not self._first_tries_pass
                or not self._ready or self.refusal is not None or self.client is None):
            return  # in particular, an overloaded or failing cluster gets one at a time
        full = (nxt.size >= self.settings.bulk_max_docs
                or self.spool.pending_entries > current.size + nxt.size)  # cut by bytes
        if not full and self._due_in() > 0:
            return
        batch, body = self._ahead.pop()
        self._queued = (batch, asyncio.ensure_future(self._request(batch.entries, body)))

    def _tried(self, first: bool, settled: bool) -> None:
        """A request's outcome, for ``_send_ahead``: trouble stops sending ahead, and only a
        batch delivered in full at its first request starts it again."""
        if not settled:
            self._first_tries_pass = False
        elif first:
            self._first_tries_pass = True

    async def _take_queued(self) -> tuple[Batch | None, asyncio.Task[list[Result]] | None]:
        """The batch already on the wire, if it starts at the cursor (else it is dropped: its
        items are sent again from the cursor, and what it stored answers 409, already there)."""
        queued = self._queued
        if queued is not None and queued[0].start == self.spool.cursor:
            self._queued = None
            return queued
        await self._drop_queued()
        return None, None

    async def _queued_answered(self) -> None:
        """Wait until the request sent ahead has its answer (kept for its turn) before a retry:
        the backoff alone let a retry join it on the wire when it went out more than the backoff
        after the request that was refused, and an overloaded cluster gets one at a time."""
        if self._queued is not None:
            await asyncio.wait([self._queued[1]])

    async def _drop_queued(self) -> None:
        queued, self._queued = self._queued, None
        if queued is not None:
            await _discard(queued[1])

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

    async def _deliver(self, batch: Batch,
                       sent: asyncio.Task[list[Result]] | None = None) -> None:
        """Send until every entry of the batch has a final verdict (``sent``: its first
        request, already on the wire)."""
        for raw in batch.damaged:
            self._ledger.dead_letter(SpoolEntry("unknown", "-", None, raw), "-", 0,
                                     ("spool_damaged", "spool line failed its CRC check"))
        entries = list(batch.entries)
        server_errors: dict[int, int] = {}
        attempt = 0
        while entries:
            try:
                request, sent = sent, None
                if request is None and not self._ready:
                    await self._preflight()
                results = await self._send(entries, batch if attempt == 0 else None, request)
            except ClusterUnauthorized as exc:
                self._refused(exc)
                self.watch.trouble(str(exc), loud=True, kind="refused")
            except (ClusterRefused, NotSetUp) as exc:
                self.watch.trouble(str(exc), loud=True, kind=type(exc).__name__)
            except ApiError as exc:
                refused = translate(exc, self.settings.url, "sending a bulk request")
                if isinstance(refused, ClusterUnauthorized):
                    self._refused(refused)
                    self.watch.trouble(str(refused), loud=True, kind="refused")
                else:
                    self.watch.trouble(f"bulk request answered HTTP {exc.status_code}: "
                                  f"{exc.message}", kind=f"http {exc.status_code}")
            except elastic_transport.TransportError as exc:
                self.watch.trouble(f"cannot reach {redact_url(self.settings.url)}: {exc.message}",
                              kind="unreachable")
            else:
                self._accepted()
                entries, not_ready = self._ledger.settle(results, server_errors)
                if not_ready:
                    self._ready = False
                self.dead_letters.sync()
                await self._check_health()
                if not entries:
                    self._tried(first=attempt == 0, settled=True)
                    self.watch.recovered()
                    return
                self.watch.trouble(f"{len(entries)} item(s) of the batch must be retried",
                              kind="items")
            self._tried(first=attempt == 0, settled=False)
            attempt += 1
            self.stats.failed_attempts += 1
            await self._notify()
            await self._check_health()  # after the notify: a waiting flush() returns first
            delay = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
            await self._backoff(delay * random.uniform(0.5, 1.0))
            await self._queued_answered()

    async def _preflight(self) -> None:
        assert self.client is not None
        await es_bulk.preflight(self.client, self.settings)
        self._ready = True

    async def _send(self, entries: list[SpoolEntry], ahead: Batch | None,
                    sent: asyncio.Task[list[Result]] | None = None) -> list[Result]:
        """One bulk request (``sent``: already on the wire); with ``ahead``, the batch after
        it is read, and sent too if due, while it is indexed."""
        assert self.client is not None
        # The body read ahead with the batch fits only the first attempt (all its entries).
        request: Awaitable[list[Result]] = sent or self._request(
            entries, self._ahead.body if ahead is not None else None)
        if ahead is None:
            self.spool.sync_cursor()
            return await request

        def side_work() -> None:
            self.spool.sync_cursor()
            self._ahead.prepare(ahead)
            self._send_ahead(ahead)

        return await while_sending(request, side_work)

    def _request(self, entries: list[SpoolEntry], body: bytes | None
                 ) -> Coroutine[object, object, list[Result]]:
        """One bulk request for ``entries`` (``body``: built beforehand), counted."""
        assert self.client is not None
        self.stats.bulk_requests += 1
        return es_bulk.send_bulk(self.client, entries, self.settings.namespace, body)

    async def _check_health(self) -> None:
        await self.watch.check_health(self.client, self.settings.request_timeout)

    async def _backoff(self, delay: float) -> None:
        self._kick.clear()
        if self._flushing or self._closing:
            delay = min(delay, 0.05)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kick.wait(), delay)


async def _discard(task: asyncio.Task[list[Result]]) -> None:
    """Cancel a request no longer wanted and collect its end, whatever it was."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
