"""Cluster health as the probe sees it: asked once per cycle, spoken only when it changes.

A yellow or red cluster still takes most writes (what it cannot store comes back per item and is
retried from the spool), so health never stops or slows measuring: it is asked in the background
after a cycle's records are spooled, with a short timeout, and one WARNING line is logged when
the status changes, not every cycle. ``code`` feeds the ``edgewatch_elasticsearch_cluster_health``
gauge (0 green, 1 yellow, 2 red). A writer without the ``monitor`` cluster privilege gets 403
from ``_cluster/health``: that is said once at INFO and the question is not asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from elasticsearch import AsyncElasticsearch, AuthorizationException

# The sink's own logger: operators (and the tests) follow one name for the whole sink.
log = logging.getLogger("pipeline.sinks.elasticsearch")

HEALTH_EVERY_S = 60.0
HEALTH_TIMEOUT_S = 5.0
HEALTH_CODES = {"green": 0, "yellow": 1, "red": 2}


class ClusterHealth:
    """The last status seen, whether we may ask at all, and the question in flight."""

    def __init__(self, every_s: float = HEALTH_EVERY_S) -> None:
        self.status: str | None = None  # green / yellow / red; None before the first answer
        self.every_s = every_s  # the sender's own questions (while retrying), at most this often
        self.checked = -every_s
        self.forbidden = False  # 403: the credentials lack the monitor privilege
        self._task: asyncio.Task[None] | None = None
        self._asking = False  # one question at a time, whoever asks

    @property
    def code(self) -> int | None:
        """0 green, 1 yellow, 2 red (the gauge); None before the first answer or if forbidden."""
        return None if self.forbidden else HEALTH_CODES.get(self.status or "")

    def after_cycle(self, client: AsyncElasticsearch | None, request_timeout: float) -> None:
        """Ask once for this cycle, in the background: the cycle's acknowledgement never waits
        for the cluster. A question still in flight from the previous cycle is not doubled."""
        if client is None or self.forbidden or self._asking:
            return
        self._task = asyncio.create_task(self.ask(client, request_timeout),
                                         name="elasticsearch-health")

    async def check(self, client: AsyncElasticsearch | None, request_timeout: float) -> None:
        """Ask unless asked within ``every_s`` (the sender, between bulk attempts)."""
        if time.monotonic() - self.checked >= self.every_s:
            await self.ask(client, request_timeout)

    async def ask(self, client: AsyncElasticsearch | None, request_timeout: float) -> None:
        if client is None or self.forbidden or self._asking:
            return
        self.checked = time.monotonic()
        timeout = min(HEALTH_TIMEOUT_S, request_timeout)
        self._asking = True
        try:
            body = (await client.options(request_timeout=timeout).cluster.health(
                master_timeout=f"{max(1, int(timeout) - 1)}s")).body
        except AuthorizationException as exc:
            self.forbidden = True
            log.info("elasticsearch cluster health cannot be reported: the credentials lack the "
                     "monitor cluster privilege (GET _cluster/health answered HTTP %s); not "
                     "asked again", exc.status_code)
            return
        except Exception as exc:  # health is advice: never let it disturb delivery
            log.debug("elasticsearch sink: cluster health unavailable: %s", exc)
            return
        finally:
            self._asking = False
        self._seen(str(body.get("status", "unknown")), body)

    def _seen(self, status: str, body: dict[str, Any]) -> None:
        if status == self.status:
            return
        previous, self.status = self.status, status
        if status == "green":
            if previous is not None:
                log.warning("elasticsearch cluster health is green again (was %s)", previous)
            return
        log.warning("elasticsearch cluster health is %s%s: %s unassigned shard(s), %s "
                    "initializing; delivery carries on and retries what cannot be stored",
                    status, f" (was {previous})" if previous else "",
                    body.get("unassigned_shards", "?"), body.get("initializing_shards", "?"))

    async def settle(self) -> None:
        """At close: the question in flight is dropped (its answer would have no reader)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._task = None
