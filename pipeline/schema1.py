"""Documents written as schema 1 (edgewatch before ECS 9.2.0 naming), read as schema 2.

A local store kept for months holds schema-1 lines; the report, ``edgewatch load`` and
``edgewatch migrate-store`` turn each one into the schema-2 document the current code would have
written from the same measurement, so old evidence keeps counting. A pure function of the line:
what schema 1 never recorded stays absent (``dns.answers``: the answer section was not kept,
unless ``edgewatch.dns.raw`` holds the wire message, from which it is re-read).
"""

from __future__ import annotations

import base64
from typing import Any

from pipeline.documents import (
    CHECK_DATASET,
    ECS_VERSION,
    SCHEMA_VERSION,
    dns_answers,
    tls_version_fields,
)

# schema-1 field → schema-2 field (docs/DOCUMENTS.md has the table)
RENAMED: dict[str, str] = {
    "dns.answer.ttl": "edgewatch.dns.ttl",
    "dns.answer.count": "edgewatch.dns.answer_count",
    "dns.cname_chain": "edgewatch.dns.cname_chain",
    "dns.answer_set.hash": "edgewatch.dns.answer_set_hash",
    "dns.ecs.source_prefix": "edgewatch.dns.ecs.source_prefix",
    "dns.ecs.scope_prefix": "edgewatch.dns.ecs.scope_prefix",
    "dns.transport_fallback": "edgewatch.dns.tcp_fallback",
    "dns.raw": "edgewatch.dns.raw",
    "dns.rtt.us": "resolve.rtt.us",
    "destination.prefix": "edgewatch.destination.prefix",
    "destination.prefix24": "edgewatch.destination.prefix24",
    "tcp.established": "edgewatch.tcp.established",
    "tls.verified": "edgewatch.tls.verified",
    "http.rtt.total.us": "http.rtt.response_header.us",
    **{f"resolver.{f}": f"edgewatch.resolver.{f}"
       for f in ("name", "provider", "transport", "ecs_subnet", "ip")},
    **{f"run.{f}": f"edgewatch.run.{f}"
       for f in ("id", "seq", "start", "last_seen", "end", "open", "checks", "gaps",
                 "duration.s", "observed.s")},
}
_X509_NAMES = ("tls.server.x509.subject.common_name", "tls.server.x509.issuer.common_name")


def is_schema1(doc: dict[str, Any]) -> bool:
    return doc.get("edgewatch.schema") == 1


def _answers_from_raw(raw: Any) -> list[dict[str, Any]] | None:
    import dns.message  # here: only a schema-1 line that kept its raw answer needs the parser

    from pipeline.probe.dns_answer import answer_records

    try:
        message = dns.message.from_wire(base64.b64decode(raw))
        return dns_answers(answer_records(message.answer)) or None
    except Exception:  # a damaged raw field costs only the answer section
        return None


def upgrade(doc: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    """The schema-2 form of a schema-1 document (``_id`` and unknown fields kept as they are)."""
    out = {RENAMED.get(k, k): v for k, v in doc.items()}
    out["edgewatch.schema"] = SCHEMA_VERSION
    out["ecs.version"] = ECS_VERSION
    if out.get("event.dataset") != CHECK_DATASET:
        return out
    out.setdefault("data_stream.type", "logs")
    out.setdefault("data_stream.dataset", CHECK_DATASET)
    out.setdefault("data_stream.namespace", namespace)
    out.setdefault("event.category", ["network"])
    out.setdefault("event.type", ["connection"] if "edgewatch.tcp.established" in out
                   else ["info"])
    out.setdefault("dns.type", "answer")
    if isinstance(out.get("tls.version"), str):
        version, protocol = tls_version_fields(out["tls.version"])
        out["tls.version"] = version
        if protocol is not None:
            out["tls.version_protocol"] = protocol
    if isinstance(out.get("tls.server.hash.sha256"), str):
        out["tls.server.hash.sha256"] = out["tls.server.hash.sha256"].upper()
    for name in _X509_NAMES:
        if isinstance(out.get(name), str):
            out[name] = [out[name]]
    if "dns.answers" not in out and "edgewatch.dns.raw" in out:
        answers = _answers_from_raw(out["edgewatch.dns.raw"])
        if answers:
            out["dns.answers"] = answers
    return out
