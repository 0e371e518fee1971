"""Event documents: facts a person or a Kibana rule should act on, once.

Built from the check document they are about (``pipeline.documents`` builds that), so an event
repeats what is needed to act on it without a second query. Today one kind: ``allowlist-miss``.
"""

from __future__ import annotations

from typing import Any

from pipeline.documents import ECS_VERSION, SCHEMA_VERSION, Record
from pipeline.es.names import EVENT_DATASET
from pipeline.ids import event_id

# event.action of the event "the first check of a run whose address no configured list allows"
ALLOWLIST_MISS = "allowlist-miss"
# what an event repeats of the check it is about: enough to act on it without a second query
_EVENT_FIELDS = ("observer.name", "dns.question.name", "dns.question.type",
                 "edgewatch.resolver.name", "edgewatch.resolver.ip", "destination.ip",
                 "destination.port", "destination.as.number", "destination.domain",
                 "edgewatch.destination.prefix", "edgewatch.destination.prefix24",
                 "edgewatch.run.id", "edgewatch.run.start", "edgewatch.check.id",
                 "edgewatch.cycle.id", "edgewatch.allowlist.allowed",
                 "edgewatch.allowlist.denied")


def allowlist_miss_record(check: Record) -> Record:
    """The event of a check document whose address no configured allowlist allows.

    Its ``_id`` is the run's (``ids.event_id``): one event per run, whoever builds it again."""
    c = check.doc
    doc: dict[str, Any] = {
        "@timestamp": c["@timestamp"],
        "ecs.version": ECS_VERSION,
        "data_stream.type": "logs",
        "data_stream.dataset": EVENT_DATASET,
        "data_stream.namespace": c.get("data_stream.namespace", "default"),
        "event.kind": "alert",
        "event.category": ["network"],
        "event.type": ["denied"],
        "event.action": ALLOWLIST_MISS,
        "event.dataset": EVENT_DATASET,
        "edgewatch.schema": SCHEMA_VERSION,
    }
    doc |= {k: v for k, v in c.items() if k in _EVENT_FIELDS or k.startswith("observer.geo.")}
    network = c.get("edgewatch.destination.prefix") or c.get("edgewatch.destination.prefix24")
    asn = f", AS{c['destination.as.number']}" if "destination.as.number" in c else ""
    doc["message"] = (
        f"{c['destination.ip']} ({network}{asn}) answered by {c['edgewatch.resolver.name']} "
        f"for {c['dns.question.name']} {c['dns.question.type']} is allowed by no allowlist "
        f"(not in {', '.join(c['edgewatch.allowlist.denied'])}); run {c['edgewatch.run.id']}")
    return Record("event", event_id(ALLOWLIST_MISS, c["edgewatch.run.id"]), doc,
                  timestamp=check.timestamp)
