"""What ``edgewatch run`` holds when metrics are on: the state, its collector, the tap among the
sinks and the endpoint, behind the hooks the run command calls (``off.MetricsOff`` has the same
hooks doing nothing, so the command has no branch per hook)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from importlib import metadata
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics

from pipeline.config import Config
from pipeline.documents import SCHEMA_VERSION, Record
from pipeline.metrics.collector import EdgewatchCollector
from pipeline.metrics.figures import cycle_figures
from pipeline.metrics.server import MetricsServer
from pipeline.metrics.state import MetricsState
from pipeline.sinks.base import Sink

LOCAL_SINKS = ("ndjson", "stdout")  # delivered when the cycle's write returned


def _version() -> str:
    try:
        return metadata.version("edgewatch")
    except metadata.PackageNotFoundError:  # a checkout run without an install
        return "unknown"


class MetricsTap:
    """A sink that only counts: it sees each cycle's records before the real sinks do, so a
    cycle a real sink refused is still measured (and published as not delivered)."""

    name = "metrics"
    durable_writes = True  # nothing to flush

    def __init__(self, state: MetricsState) -> None:
        self.state = state

    async def open(self) -> None:
        return None

    async def write(self, records: Sequence[Record]) -> None:
        figures = cycle_figures(records, self.state.pairs)
        if figures is not None:
            self.state.pending(figures)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


class Metrics:
    """The state, its collector, the tap and the HTTP endpoint of one daemon."""

    def __init__(self, config: Config, started_at: float | None = None) -> None:
        speed = config.clock.speed if config.clock else 1.0
        self.config = config
        self.interval_s = config.schedule.interval_s
        self.state = MetricsState(
            interval_real_s=self.interval_s / speed, speed=speed,
            local_sinks=tuple(s for s in config.sinks if s in LOCAL_SINKS),
            pairs=tuple((t.name, r.name) for t in config.targets for r in config.resolvers),
            started_at=started_at)
        disable_created_metrics()  # no *_created series: they double a scrape and say little
        self.registry = CollectorRegistry()
        self.registry.register(EdgewatchCollector(self.state, {
            "version": _version(), "schema": str(SCHEMA_VERSION),
            "observer": config.observer_name}))
        self.registry.register(ProcessCollector(registry=None))
        self.tap = MetricsTap(self.state)
        self.taps = (self.tap,)  # what goes first among the sinks
        self.server: MetricsServer | None = None

    def watch(self, sinks: Sequence[Sink]) -> None:
        """Note the Elasticsearch sink, whose spool and counters are read at each scrape."""
        for sink in sinks:
            if sink.name == "elasticsearch":
                self.state.es = sink

    def start(self) -> None:
        """Listen on ``metrics.listen``; MetricsError (one line) when the port is taken."""
        assert self.config.metrics_listen is not None
        host, port = self.config.metrics_listen
        self.server = MetricsServer.start(host, port, self.registry)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    # -- what the run command reports --------------------------------------------------------

    def scheduled(self, first: datetime) -> None:
        """The first slot of the cadence (scenario time): the grid lateness is measured on,
        and, until a cycle has ended, the instant lateness is counted from."""
        ck = self.config.clock
        real = ck.anchor + (first - ck.start).total_seconds() / ck.speed if ck else \
            first.timestamp()
        self.state.first_slot(first, real)

    def cycle_done(self, stats: Any) -> None:
        """A cycle (``CycleStats``) finished: publish it with the documents it wrote (a cycle
        skipped because the clock went back, which ``run --once`` reports too, is a skip)."""
        if stats.clock_behind_s:
            self.state.skipped("clock_behind")
            return
        self.state.publish(stats, self.interval_s, time.time())

    def skipped(self, reason: str) -> None:
        self.state.skipped(reason)
