"""What the Elasticsearch sink tells an operator while delivery is paused or the cluster ails.

Delivery problems are logged once when they start or change kind and then once a minute, never
per attempt; cluster health is asked at most every ``health_every_s`` and logged only when it
changes. Neither ever stops delivery: this module only watches and speaks.
"""

from __future__ import annotations

import logging
import time

from elasticsearch import AsyncElasticsearch

from pipeline.sinks.spool import Spool, human_bytes

# The sink's own logger: operators (and the tests) follow one name for the whole sink.
log = logging.getLogger("pipeline.sinks.elasticsearch")

REMIND_EVERY_S = 60.0
HEALTH_EVERY_S = 60.0


class DeliveryWatch:
    """The paused/resumed state of delivery and the last cluster health seen."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.down_since: float | None = None
        self.down_kind = ""
        self.last_reminder = 0.0
        self.health_every_s = HEALTH_EVERY_S
        self.health: str | None = None  # last cluster health status seen (green/yellow/red)
        self.health_checked = -HEALTH_EVERY_S

    def trouble(self, why: str, loud: bool = False, kind: str = "") -> None:
        """Log a delivery problem once when it starts or changes kind, then once a minute."""
        now = time.monotonic()
        level = logging.ERROR if loud else logging.WARNING
        pending = self.spool.pending_entries
        if self.down_since is None or kind != self.down_kind:
            if self.down_since is None:
                self.down_since = now
            self.last_reminder = now
            self.down_kind = kind
            log.log(level, "elasticsearch delivery paused: %s; %d record(s) (%s) wait in "
                    "the spool and are retried with backoff", why, pending,
                    human_bytes(self.spool.pending_bytes))
        elif now - self.last_reminder >= REMIND_EVERY_S:
            self.last_reminder = now
            log.log(level, "elasticsearch delivery still paused after %.0fs: %s; %d record(s) "
                    "(%s) spooled", now - self.down_since, why, pending,
                    human_bytes(self.spool.pending_bytes))

    def recovered(self) -> None:
        if self.down_since is not None:
            log.warning("elasticsearch delivery resumed after %.0fs; %d record(s) still spooled",
                        time.monotonic() - self.down_since, self.spool.pending_entries)
            self.down_since = None
            self.down_kind = ""

    async def check_health(self, client: AsyncElasticsearch | None,
                           request_timeout: float) -> None:
        """Cluster health, at most every ``health_every_s``; logged only when it changes.

        Yellow or red never stops delivery (writes that cannot be stored come back as retries
        per item); the line tells an operator why delivery may slow down or stall.
        """
        now = time.monotonic()
        if client is None or now - self.health_checked < self.health_every_s:
            return
        self.health_checked = now
        try:
            body = (await client.options(request_timeout=min(
                5.0, request_timeout)).cluster.health()).body
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
