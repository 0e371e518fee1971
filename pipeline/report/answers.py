"""Per-query answers, the evidence a replay needs: one row per cycle × target × type × resolver.

The report's other rows are grouped counts; a replay of a firewall model needs the answers
themselves, in cycle order, with the addresses in the order the resolver returned them (a
firewall keeping at most N addresses keeps the first N) and the TTL it served. Every check
document of one query repeats the DNS fields, so the rows are folded from the documents here,
once, for both sources: the ndjson store and Elasticsearch hand the same documents to the same
fold and therefore yield the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.report.store_lines import field_value

# The fields the fold reads (Elasticsearch fetches only these from _source).
ANSWER_FIELDS = (
    "@timestamp", "edgewatch.cycle.id", "edgewatch.check.id", "dns.question.name",
    "dns.question.type", "edgewatch.resolver.name", "edgewatch.resolver.provider",
    "edgewatch.resolver.ecs_subnet", "edgewatch.dns.ecs.scope_prefix", "dns.resolved_ip",
    "edgewatch.dns.ttl", "destination.ip", "error.type", "event.outcome",
    "edgewatch.tls.verified",
)


_KEPT = ("edgewatch.cycle.id", "dns.question.name", "dns.question.type",
         "edgewatch.resolver.provider", "edgewatch.resolver.ecs_subnet",
         "edgewatch.dns.ecs.scope_prefix", "error.type")


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """What one resolver answered for one target and record type in one cycle.

    ``ok`` is a usable DNS answer (at least one address); a failed query has no addresses and
    its ``error`` (``dns.timeout``, …). ``ttl`` is the smallest address-record TTL served.
    ``ecs_scope`` is the echoed EDNS Client Subnet scope (None when no subnet was sent).
    """

    cycle: str
    time: datetime
    target: str
    qtype: str
    resolver: str
    provider: str | None
    ecs_subnet: str | None
    ecs_scope: int | None
    addresses: tuple[str, ...]
    ttl: int | None
    error: str | None
    # the answered addresses whose check succeeded with a verified certificate: the evidence
    # a living list is built from
    verified: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return bool(self.addresses)


def fold_answers(docs: Iterable[tuple[datetime, dict[str, Any]]]) -> list[AnswerRow]:
    """(timestamp, check document) pairs → one row per query, in time order.

    A query is (``edgewatch.check.id``, resolver). The addresses come from ``dns.resolved_ip``
    (the whole answer in order); documents of schema 2 always carry it with an address.
    """
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for ts, doc in docs:
        key = (field_value(doc, "edgewatch.check.id"), field_value(doc, "edgewatch.resolver.name"))
        entry = acc.get(key)
        ttl = field_value(doc, "edgewatch.dns.ttl")
        good = (field_value(doc, "destination.ip") if field_value(doc, "event.outcome") == "success"
                and field_value(doc, "edgewatch.tls.verified") is True else None)
        if entry is None:
            ips = field_value(doc, "dns.resolved_ip") or []
            if isinstance(ips, str):
                ips = [ips]
            if not ips and field_value(doc, "destination.ip"):
                ips = [field_value(doc, "destination.ip")]
            kept = {k: field_value(doc, k) for k in _KEPT}  # not the whole document: memory
            acc[key] = entry = {"ts": ts, "doc": kept, "ips": tuple(ips), "ttl": ttl,
                                "verified": set()}
            if good:
                entry["verified"].add(good)
            continue
        if good:
            entry["verified"].add(good)
        entry["ts"] = min(entry["ts"], ts)
        if ttl is not None and (entry["ttl"] is None or ttl < entry["ttl"]):
            entry["ttl"] = ttl
    rows = [_row(key, e) for key, e in acc.items()]
    rows.sort(key=lambda r: (r.time, r.target, r.qtype, r.resolver))
    return rows


def _row(key: tuple[str, str], e: dict[str, Any]) -> AnswerRow:
    doc = e["doc"]
    scope = field_value(doc, "edgewatch.dns.ecs.scope_prefix")
    return AnswerRow(
        cycle=str(field_value(doc, "edgewatch.cycle.id") or key[0]), time=e["ts"],
        target=field_value(doc, "dns.question.name") or "",
        qtype=field_value(doc, "dns.question.type") or "A",
        resolver=key[1], provider=field_value(doc, "edgewatch.resolver.provider"),
        ecs_subnet=field_value(doc, "edgewatch.resolver.ecs_subnet"),
        ecs_scope=None if scope is None else int(scope),
        addresses=e["ips"], ttl=None if e["ttl"] is None else int(e["ttl"]),
        error=None if e["ips"] else (field_value(doc, "error.type") or "dns.unknown"),
        verified=frozenset(e["verified"]),
    )


def iter_targets(rows: Iterable[AnswerRow]) -> Iterator[str]:
    """The targets present, sorted."""
    yield from sorted({r.target for r in rows})
