"""What the Elasticsearch sink tells an operator while delivery is paused or the cluster ails.

Delivery problems are logged once when they start or change kind and then once a minute, never
per attempt; cluster health (``es_health``) is asked once per cycle and logged only when it
changes. Neither ever stops delivery: this module only watches and speaks.
"""

from __future__ import annotations

import logging
import time

from elasticsearch import AsyncElasticsearch

from pipeline.sinks.es_health import ClusterHealth
from pipeline.sinks.spool import Spool, human_bytes

# The sink's own logger: operators (and the tests) follow one name for the whole sink.
log = logging.getLogger("pipeline.sinks.elasticsearch")

REMIND_EVERY_S = 60.0


class DeliveryWatch:
    """The paused/resumed state of delivery and the last cluster health seen."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.down_since: float | None = None
        self.down_kind = ""
        self.last_reminder = 0.0
        self.cluster = ClusterHealth()  # cluster health: asked per cycle, logged on change

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
        """Cluster health, at most every ``health_every_s`` (``es_health``)."""
        await self.cluster.check(client, request_timeout)

    @property
    def health(self) -> str | None:
        return self.cluster.status

    @property
    def health_every_s(self) -> float:
        return self.cluster.every_s

    @health_every_s.setter
    def health_every_s(self, value: float) -> None:
        self.cluster.every_s = value
