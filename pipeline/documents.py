"""Flat, ECS-aligned documents: what a check and a run look like once they leave the pipeline.

Documents are plain dicts with dotted keys (the way Heartbeat and ECS loggers write them), so a
sink can serialise them with orjson without walking nested objects, and Elasticsearch expands the
dots against the explicit mapping. Ids are derived from content, never random, so that replaying
a spool or re-running a cycle can never index the same fact twice.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson

from pipeline.es.names import (  # a leaf: names only, no client
    CHECK_DATASET,
    EVENT_DATASET,
    RUN_DATASET,
)
from pipeline.ids import answer_set_hash as answer_set_hash
from pipeline.ids import check_doc_id as check_doc_id
from pipeline.ids import check_id as check_id
from pipeline.ids import event_id
from pipeline.ids import stamp as iso

if TYPE_CHECKING:  # annotations only: readers of stored documents must not import the probes
    from pipeline.probe.connect import ConnectResult
    from pipeline.probe.dns import DnsResult
    from pipeline.probe.dns_answer import AnswerRecord
    from pipeline.probe.netinfo import NetInfo
    from pipeline.probe.rdns import RdnsResult
    from pipeline.runs import Assignment, Run

SCHEMA_VERSION = 2
# The ECS release whose names, types and allowed values the documents follow (ecs.version).
ECS_VERSION = "9.2.0"

RecordKind = Literal["check", "run", "event"]  # the keys of pipeline.es.names.RECORD_KINDS

# ``edgewatch.connect.skipped``: why an answered address got no TCP/TLS check. "cap": the answer
# had more addresses than ``limits.max_addresses``; the document's outcome then follows DNS only.
CAP_SKIPPED = "cap"


@dataclass(frozen=True, slots=True)
class Record:
    """One document on its way to the sinks.

    ``kind`` decides the destination (the check data stream or the runs index), ``id`` is the
    Elasticsearch ``_id``, and ``version`` (run summaries only) orders updates of the same id so
    an older snapshot can never overwrite a newer one.
    """

    kind: RecordKind
    id: str
    doc: dict[str, Any]
    version: int | None = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> bytes:
        return dumps(self.doc)


def dumps(doc: dict[str, Any]) -> bytes:
    """orjson with the options every sink needs: UTC datetimes with a Z, no NaN surprises."""
    return orjson.dumps(doc, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


# --- builders -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What every document of one check shares."""

    cycle_id: str
    check_id: str
    observer: str
    observer_geo: dict[str, str]
    target: str
    rtype: str
    port: int
    # data_stream.namespace: the Elasticsearch namespace the run writes to ("default" without one)
    namespace: str = "default"


def tls_version_fields(version: str | None) -> tuple[str | None, str | None]:
    """``"TLSv1.3"`` (Python's ``SSLObject.version()``) as ECS's ``("1.3", "tls")``.

    ECS (and Heartbeat) split the protocol name from its numeric version; a bare major such as
    ``TLSv1`` or ``SSLv3`` reads ``1.0`` / ``3.0``. Anything unforeseen keeps its text as the
    version, without a protocol, rather than be guessed.
    """
    if not version:
        return None, None
    m = re.fullmatch(r"(TLS|SSL|DTLS)v?(\d+)(?:\.(\d+))?", version.strip())
    if m is None:
        return version, None
    return f"{m.group(2)}.{m.group(3) or 0}", m.group(1).lower()


# ``dns.answers`` repeats the answer section in every per-address document: an answer of 254
# addresses would otherwise put 254 × 254 objects into one cycle's documents. The first records
# are the ones that tell the CDN map (the CNAME chain comes first); every address is still in
# ``dns.resolved_ip`` and the whole message in ``edgewatch.dns.raw`` when kept.
MAX_DOC_ANSWERS = 64


def dns_answers(answers: tuple[AnswerRecord, ...]) -> list[dict[str, Any]]:
    """The answer section as ECS ``dns.answers`` objects, in the order the resolver sent it
    (at most ``MAX_DOC_ANSWERS`` of them)."""
    out = []
    for name, rtype, rclass, ttl, data in answers[:MAX_DOC_ANSWERS]:
        entry: dict[str, Any] = {"name": name, "type": rtype, "class": rclass, "ttl": ttl}
        if data is not None:
            entry["data"] = data
        out.append(entry)
    return out


def _put(doc: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        doc[key] = value


def _base(ctx: CheckContext, queried_at: datetime, result: DnsResult) -> dict[str, Any]:
    r = result.resolver
    doc: dict[str, Any] = {
        "@timestamp": iso(queried_at),
        "ecs.version": ECS_VERSION,
        "data_stream.type": "logs",
        "data_stream.dataset": CHECK_DATASET,
        "data_stream.namespace": ctx.namespace,
        "event.kind": "event",
        "event.category": ["network"],
        "event.dataset": CHECK_DATASET,
        "edgewatch.schema": SCHEMA_VERSION,
        "edgewatch.cycle.id": ctx.cycle_id,
        "edgewatch.check.id": ctx.check_id,
        "observer.name": ctx.observer,
        "dns.question.name": ctx.target,
        "dns.question.type": ctx.rtype,
        "dns.type": "answer",
        "edgewatch.resolver.name": r.name,
        "edgewatch.resolver.ip": r.address,
        "edgewatch.resolver.transport": r.transport,
    }
    for k, v in ctx.observer_geo.items():
        doc[f"observer.geo.{k}"] = v
    _put(doc, "edgewatch.resolver.provider", r.provider or None)
    _put(doc, "edgewatch.resolver.ecs_subnet", r.client_subnet)
    _put(doc, "dns.response_code", result.rcode)
    if result.flags:
        doc["dns.header_flags"] = list(result.flags)
    if result.answers:
        doc["dns.answers"] = dns_answers(result.answers)
    if result.cname_chain:
        doc["edgewatch.dns.cname_chain"] = list(result.cname_chain)
    _put(doc, "resolve.rtt.us", result.rtt_us)
    if result.rtt_us is not None:
        doc["event.duration"] = result.rtt_us * 1000
    _put(doc, "edgewatch.dns.ecs.source_prefix", result.ecs_source_prefix)
    _put(doc, "edgewatch.dns.ecs.scope_prefix", result.ecs_scope_prefix)
    if result.tcp_fallback:
        doc["edgewatch.dns.tcp_fallback"] = True
    if result.raw is not None:
        doc["edgewatch.dns.raw"] = base64.b64encode(result.raw).decode()
    if result.addresses:
        addrs = [a.address for a in result.addresses]
        doc["dns.resolved_ip"] = addrs
        doc["edgewatch.dns.answer_count"] = len(addrs)
        doc["edgewatch.dns.answer_set_hash"] = answer_set_hash(addrs)
    return doc


def _connect_fields(doc: dict[str, Any], c: ConnectResult) -> None:
    doc["edgewatch.tcp.established"] = c.tcp_established
    _put(doc, "tcp.rtt.connect.us", c.tcp_connect_us)
    if c.tcp_established:
        doc["tls.established"] = c.tls_established
        doc["edgewatch.tls.verified"] = c.tls_verified
    _put(doc, "tls.rtt.handshake.us", c.tls_handshake_us)
    version, protocol = tls_version_fields(c.tls_version)
    _put(doc, "tls.version", version)
    _put(doc, "tls.version_protocol", protocol)
    _put(doc, "tls.cipher", c.tls_cipher)
    cert = c.certificate
    if cert is not None:
        # ECS normalises the x509 name fields to arrays (a name may hold several CNs)
        if cert.subject_cn is not None:
            doc["tls.server.x509.subject.common_name"] = [cert.subject_cn]
        if cert.issuer_cn is not None:
            doc["tls.server.x509.issuer.common_name"] = [cert.issuer_cn]
        if cert.alt_names:
            doc["tls.server.x509.alternative_names"] = list(cert.alt_names)
        if cert.not_before is not None:
            doc["tls.server.x509.not_before"] = iso(cert.not_before)
        if cert.not_after is not None:
            doc["tls.server.x509.not_after"] = iso(cert.not_after)
        doc["tls.server.hash.sha256"] = cert.sha256.upper()  # ECS: uppercase hex
        # what of the certificate could not be parsed (the handshake still counts as it was)
        _put(doc, "edgewatch.certificate.parse_error", cert.parse_error)
    _put(doc, "http.response.status_code", c.http_status)
    _put(doc, "http.rtt.response_header.us", c.http_total_us)


@dataclass(frozen=True, slots=True)
class AddressFacts:
    """What the cycle learnt about the answered addresses, beside the DNS answer itself.

    ``skipped`` names the addresses that were recorded but deliberately not connected to, with
    the reason (``CAP_SKIPPED``); their outcome follows the DNS answer alone.
    """

    connects: dict[str, ConnectResult] = field(default_factory=dict)
    rdns: dict[str, RdnsResult] = field(default_factory=dict)
    netinfo: dict[str, NetInfo] = field(default_factory=dict)
    runs: dict[str, Assignment] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    # address -> (names of the configured allowlists that contain it, names of those that do
    # not); empty when no list is configured, and then the fields stay out of the documents
    allowlist: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)


def check_records(ctx: CheckContext, queried_at: datetime, result: DnsResult,
                  facts: AddressFacts | None = None) -> list[Record]:
    """One record per answered address, or a single failure record for an unusable answer."""
    facts = facts or AddressFacts()
    base = _base(ctx, queried_at, result)
    if not result.ok:
        doc = dict(base)
        doc["event.type"] = ["info"]
        doc["event.outcome"] = "failure"
        _put(doc, "error.type", result.error_type)
        _put(doc, "error.message", result.error_message)
        return [Record("check", check_doc_id(ctx.check_id, result.resolver.name, None), doc,
                       timestamp=queried_at)]
    records = []
    for answer in result.addresses:
        doc = dict(base)
        addr = answer.address
        doc["destination.ip"] = addr
        doc["destination.port"] = ctx.port
        doc["edgewatch.dns.ttl"] = answer.ttl
        info = facts.netinfo.get(addr)
        if info is not None:
            _put(doc, "destination.as.number", info.asn)
            _put(doc, "destination.as.organization.name", info.organization)
            _put(doc, "edgewatch.destination.prefix", info.prefix)
            doc["edgewatch.destination.prefix24"] = info.prefix24
        ptr = facts.rdns.get(addr)
        if ptr is not None:
            _put(doc, "destination.domain", ptr.hostname)
        conn = facts.connects.get(addr)
        if conn is not None:
            _connect_fields(doc, conn)
        elif addr in facts.skipped:
            doc["edgewatch.connect.skipped"] = facts.skipped[addr]
        run = facts.runs.get(addr)
        if run is not None:
            doc["edgewatch.run.id"] = run.run_id
            doc["edgewatch.run.seq"] = run.seq
            doc["edgewatch.run.start"] = iso(run.start)
        verdict = facts.allowlist.get(addr)
        if verdict is not None:
            doc["edgewatch.allowlist.allowed"], doc["edgewatch.allowlist.denied"] = verdict
        # ECS: "connection" when this address was connected to, "info" when only DNS speaks
        doc["event.type"] = ["connection"] if conn is not None else ["info"]
        failed = conn is not None and not conn.ok
        doc["event.outcome"] = "failure" if failed else "success"
        if failed:
            _put(doc, "error.type", conn.error_type)
            _put(doc, "error.message", conn.error_message)
        records.append(Record("check", check_doc_id(ctx.check_id, result.resolver.name, addr),
                              doc, timestamp=queried_at))
    return records


def run_record(run: Run, info: NetInfo | None = None, domain: str | None = None) -> Record:
    """The run summary: run length becomes one field to chart."""
    end_or_last = run.end or run.last_seen
    doc: dict[str, Any] = {
        "@timestamp": iso(run.start),
        "event.kind": "state",
        "event.dataset": RUN_DATASET,
        "ecs.version": ECS_VERSION,
        "edgewatch.schema": SCHEMA_VERSION,
        "edgewatch.run.version": run.version,
        "observer.name": run.key.observer,
        "dns.question.name": run.key.name,
        "dns.question.type": run.key.rtype,
        "edgewatch.resolver.name": run.key.resolver,
        "destination.ip": run.key.address,
        "edgewatch.run.id": run.id,
        "edgewatch.run.start": iso(run.start),
        "edgewatch.run.last_seen": iso(run.last_seen),
        "edgewatch.run.open": run.open,
        "edgewatch.run.checks": run.checks,
        "edgewatch.run.gaps": run.gaps,
        "edgewatch.run.duration.s": int((end_or_last - run.start).total_seconds()),
        "edgewatch.run.observed.s": int((run.last_seen - run.start).total_seconds()),
    }
    _put(doc, "edgewatch.resolver.ip", run.resolver_ip or None)
    if run.end is not None:
        doc["edgewatch.run.end"] = iso(run.end)
    if info is not None:
        _put(doc, "edgewatch.destination.prefix", info.prefix)
        doc["edgewatch.destination.prefix24"] = info.prefix24
        _put(doc, "destination.as.number", info.asn)
    _put(doc, "destination.domain", domain)
    return Record("run", run.id, doc, version=run.version, timestamp=run.last_seen)


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


def record_from_stored(line: dict[str, Any]) -> Record:
    """A document read back from the local store (``_id`` inline) as a record for a sink."""
    doc = {k: v for k, v in line.items() if k != "_id"}
    if doc.get("event.dataset") == RUN_DATASET:
        return Record("run", line["_id"], doc, version=int(doc["edgewatch.run.version"]))
    if doc.get("event.dataset") == CHECK_DATASET:
        return Record("check", line["_id"], doc)
    if doc.get("event.dataset") == EVENT_DATASET:
        return Record("event", line["_id"], doc)
    raise ValueError(f"not an edgewatch document: event.dataset={doc.get('event.dataset')!r}")
