"""The metric families, built from ``MetricsState`` at each scrape.

A custom collector rather than prometheus_client's metric objects: the last cycle's gauges must
lose the label sets the cycle no longer has (a resolver whose error went away), and a scrape
must see one cycle entirely or not at all; both come from building every family from one
locked snapshot. Names follow the Prometheus conventions: ``edgewatch_`` prefix, ``_total``
counters, ``_seconds`` and unix-time ``_timestamp_seconds`` gauges; docs/METRICS.md lists them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pipeline.metrics.state import DURATION_BUCKETS, MetricsState

PAIR = ["target", "resolver"]
CHECK = [*PAIR, "outcome", "error_type"]
LIST = ["list", *PAIR]


class EdgewatchCollector(Collector):
    """Every ``edgewatch_*`` family, from one snapshot of the state."""

    def __init__(self, state: MetricsState, info: dict[str, str]) -> None:
        self.state = state
        self.info = info

    def collect(self) -> Iterator[Metric]:
        with self.state.lock:
            families = [*self._about(), *self._cycles(), *self._checks(), *self._delivery()]
        yield from families

    def _about(self) -> Iterator[Metric]:
        yield InfoMetricFamily("edgewatch_build", "edgewatch version, document schema and "
                               "observer name of this daemon", value=self.info)
        yield GaugeMetricFamily("edgewatch_start_timestamp_seconds",
                                "When this daemon started (unix time)",
                                value=self.state.started_at)
        yield GaugeMetricFamily("edgewatch_cycle_interval_seconds", "Configured time between "
                                "two cycles, in real seconds (schedule.interval / clock.speed)",
                                value=self.state.interval_real_s)

    def _cycles(self) -> Iterator[Metric]:
        s, t, last = self.state, self.state.totals, self.state.last
        cycles = CounterMetricFamily("edgewatch_cycles", "Cycles finished, by whether every "
                                     "sink took their documents", labels=["delivered"])
        for delivered in (True, False):
            cycles.add_metric([str(delivered).lower()], t.cycles[delivered])
        yield cycles
        skipped = CounterMetricFamily("edgewatch_cycles_skipped", "Slots of the cadence not "
                                      "measured: late (the slot had passed when the previous "
                                      "cycle ended), clock_behind (the clock went back)",
                                      labels=["reason"])
        for reason in ("late", "clock_behind"):
            skipped.add_metric([reason], t.skipped[reason])
        yield skipped
        hist = HistogramMetricFamily("edgewatch_cycle_duration_seconds",
                                     "Real time a cycle took, from first query to written")
        cumulative = [(f"{b:g}", n) for b, n in zip(DURATION_BUCKETS, t.duration_buckets,
                                                    strict=True)]
        hist.add_metric([], [*cumulative, ("+Inf", sum(t.cycles.values()))], t.duration_sum)
        yield hist
        yield GaugeMetricFamily("edgewatch_last_cycle_end_timestamp_seconds", "When the last "
                                "cycle ended (unix time; before the first: when it was due, "
                                "or the daemon's start with run --once)",
                                value=last.end or s.started_at)
        if last.duration_s is not None:
            yield GaugeMetricFamily("edgewatch_last_cycle_duration_seconds",
                                    "Real time the last cycle took", value=last.duration_s)
            yield GaugeMetricFamily("edgewatch_last_cycle_delivered", "1 if every sink took "
                                    "the last cycle's documents, else 0",
                                    value=float(bool(last.delivered)))
        if last.lateness_s is not None:
            yield GaugeMetricFamily("edgewatch_last_cycle_lateness_seconds", "Real seconds "
                                    "the last cycle started after its slot on the cadence grid",
                                    value=last.lateness_s)

    def _checks(self) -> Iterator[Metric]:
        t, fig = self.state.totals, self.state.last.figures
        checks = CounterMetricFamily("edgewatch_checks", "Check documents, by target, "
                                     "resolver, event.outcome and error.type", labels=CHECK)
        last_checks = GaugeMetricFamily("edgewatch_last_cycle_checks", "Check documents of "
                                        "the last cycle, by target, resolver, event.outcome "
                                        "and error.type", labels=CHECK)
        for family, counts in ((checks, t.checks), (last_checks, fig.checks)):
            for key, n in sorted(counts.items()):
                family.add_metric(list(key), n)
        yield checks
        yield last_checks
        answers = GaugeMetricFamily("edgewatch_last_cycle_answer_addresses", "Addresses the "
                                    "last cycle's answers held, by target and resolver (all "
                                    "record types; 0 when the query failed)", labels=PAIR)
        for key, n in sorted(fig.addresses.items()):
            answers.add_metric(list(key), n)
        yield answers
        denied = CounterMetricFamily("edgewatch_checks_denied", "Check documents of an "
                                     "answered address that a deployed allowlist would not let "
                                     "through, by list, target and resolver", labels=LIST)
        last_denied = GaugeMetricFamily("edgewatch_last_cycle_checks_denied", "The last "
                                        "cycle's check documents a deployed allowlist would "
                                        "not let through, by list, target and resolver",
                                        labels=LIST)
        for family, counts in ((denied, t.denied), (last_denied, fig.denied)):
            for key, n in sorted(counts.items()):
                family.add_metric(list(key), n)
        yield denied
        yield last_denied

    def _delivery(self) -> Iterator[Metric]:
        s = self.state
        last = GaugeMetricFamily("edgewatch_last_delivery_timestamp_seconds", "When a sink "
                                 "last stored documents (unix time): a delivered cycle for "
                                 "ndjson/stdout, a bulk request for elasticsearch",
                                 labels=["sink"])
        for sink, at in sorted(s.last_local_delivery.items()):
            last.add_metric([sink], at)
        es = s.es
        if es is not None and es.stats.last_delivered_at is not None:
            last.add_metric(["elasticsearch"], es.stats.last_delivered_at)
        yield last
        if es is not None:
            yield from _elasticsearch(s, es)


def _elasticsearch(s: MetricsState, es: object) -> Iterator[Metric]:
    """The spool and the cluster's answers, read from the Elasticsearch sink as they are now."""
    stats, spool = es.stats, es.spool  # type: ignore[attr-defined]
    pending = spool.pending_entries
    yield GaugeMetricFamily("edgewatch_spool_documents", "Documents in the spool not yet "
                            "delivered to Elasticsearch", value=pending)
    yield GaugeMetricFamily("edgewatch_spool_bytes", "Bytes of those documents in the spool",
                            value=spool.pending_bytes)
    yield GaugeMetricFamily("edgewatch_spool_oldest_document_age_seconds", "How long the "
                            "oldest undelivered document has waited in the spool (0 if none)",
                            value=s.spool_age.age(time.time(), pending))
    yield CounterMetricFamily("edgewatch_spool_refused_documents", "Documents the full spool "
                              "refused (lost)", value=stats.refused)
    yield CounterMetricFamily("edgewatch_dead_letters", "Documents Elasticsearch refused for "
                              "good, kept in the dead-letter folder", value=stats.dead_lettered)
    stored = CounterMetricFamily("edgewatch_elasticsearch_documents", "Final answers of "
                                 "Elasticsearch per document: stored, already_stored (a replay), "
                                 "superseded (a newer run summary is stored)", labels=["result"])
    for result, n in (("stored", stats.delivered), ("already_stored", stats.duplicates),
                      ("superseded", stats.stale)):
        stored.add_metric([result], n)
    yield stored
    yield CounterMetricFamily("edgewatch_elasticsearch_failed_attempts", "Bulk attempts that "
                              "left documents to retry (unreachable, 429, 5xx, refused)",
                              value=stats.failed_attempts)
    yield GaugeMetricFamily("edgewatch_elasticsearch_credentials_refused", "1 while the "
                            "cluster refuses the sink's credentials or privileges",
                            value=float(getattr(es, "refusal", None) is not None))
    health = getattr(getattr(es, "watch", None), "cluster", None)
    if health is not None and health.code is not None:  # none before the first answer
        yield GaugeMetricFamily("edgewatch_elasticsearch_cluster_health", "Cluster health "
                                "as last asked after a cycle: 0 green, 1 yellow, 2 red",
                                value=float(health.code))
