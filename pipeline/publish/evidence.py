"""The living list's evidence: successful, verified checks per target, address and 5 minutes.

Read from the same two stores as the report (the ndjson store or Elasticsearch, where several
probes may write into one cluster and so feed one list), reduced to ``Sighting`` rows so the
rule never sees single documents. Only checks with ``event.outcome: success`` and
``edgewatch.tls.verified: true`` count: an address that answers with the wrong certificate
serves nobody and must not be opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline.publish.rule import BUCKET_S, Sighting
from pipeline.report.filters import Filters
from pipeline.report.store_lines import field_value

if TYPE_CHECKING:
    from pipeline.report.es_source import ElasticsearchSource
    from pipeline.report.store_source import StoreSource


def store_sightings(source: StoreSource, filters: Filters) -> Iterator[Sighting]:
    """Sightings from the ndjson store (one pass over the day files the window touches)."""
    groups: dict[tuple[str, str, str | None, str | None, int], list[Any]] = {}
    for ts, doc in source.checks(filters):
        ip = field_value(doc, "destination.ip")
        if (ip is None or field_value(doc, "event.outcome") != "success"
                or field_value(doc, "edgewatch.tls.verified") is not True):
            continue
        key = (field_value(doc, "dns.question.name"), ip,
               field_value(doc, "edgewatch.destination.prefix24"),
               field_value(doc, "edgewatch.destination.prefix"),
               int(ts.timestamp() // BUCKET_S))
        acc = groups.setdefault(key, [0, ts])
        acc[0] += 1
        acc[1] = max(acc[1], ts)
    for (target, ip, p24, prefix, bucket), (n, last) in groups.items():
        yield Sighting(target, ip, p24, prefix, bucket, n, last)


def es_sightings(source: ElasticsearchSource, filters: Filters) -> Iterator[Sighting]:
    """Sightings from Elasticsearch: one composite aggregation, paged, with the newest check
    of each group (``max`` on ``@timestamp``)."""
    sources = [
        {"target": {"terms": {"field": "dns.question.name"}}},
        {"ip": {"terms": {"field": "destination.ip"}}},
        {"prefix24": {"terms": {"field": "edgewatch.destination.prefix24",
                                "missing_bucket": True}}},
        {"prefix": {"terms": {"field": "edgewatch.destination.prefix", "missing_bucket": True}}},
        {"bucket": {"date_histogram": {"field": "@timestamp", "fixed_interval": f"{BUCKET_S}s"}}},
    ]
    extra = [{"term": {"event.outcome": "success"}}, {"term": {"edgewatch.tls.verified": True}},
             {"exists": {"field": "destination.ip"}}]
    aggs = {"last": {"max": {"field": "@timestamp"}}}
    for b in source.check_groups(filters, extra, sources, "sightings", aggs):
        k = b["key"]
        yield Sighting(k["target"], k["ip"], k["prefix24"], k["prefix"],
                       int(k["bucket"]) // 1000 // BUCKET_S, b["doc_count"],
                       datetime.fromtimestamp(b["last"]["value"] / 1000, UTC))


def sightings(source: object, filters: Filters) -> Iterator[Sighting]:
    """Whichever store ``source`` reads."""
    from pipeline.report.store_source import StoreSource

    if isinstance(source, StoreSource):
        return store_sightings(source, filters)
    return es_sightings(source, filters)  # type: ignore[arg-type]
