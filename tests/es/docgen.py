"""Realistic check documents and run summaries for the Elasticsearch tests and the benchmark.

Check documents are built from docs/DOCUMENTS.md with the id helpers of ``pipeline.documents``
(the production check builder needs probe results, which these tests do not have): every cycle
asks each resolver, each answer address yields one document, and a timeout now and then yields
the address-less failure document. Run summaries come from the production builder itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline import documents
from pipeline.documents import (
    CHECK_DATASET,
    ECS_VERSION,
    SCHEMA_VERSION,
    Record,
    answer_set_hash,
    check_doc_id,
    check_id,
    iso,
)
from pipeline.probe.netinfo import NetInfo
from pipeline.runs import Run, RunKey

START = datetime(2026, 3, 2, tzinfo=UTC)
TARGET = "acme-v02.api.example.test"
RESOLVERS = [(f"resolver-{i}", f"127.0.53.{10 + i}", "udp" if i % 2 else "tcp")
             for i in range(5)]


def _addresses(cycle: int, r: int) -> list[str]:
    """Two addresses per answer; resolvers 0-2 see 127.60/16, 3-4 see 127.61/16; slow churn."""
    net = 60 if r < 3 else 61
    base = (cycle // 8 + r) % 40
    return [f"127.{net}.{base}.{5 + r}", f"127.{net}.{base + 1}.{9 + r}"]


def _fp(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def check_doc(cycle: int, r: int, address: str | None, ts: datetime,
              observer: str = "probe-1") -> tuple[str, dict[str, Any]]:
    name, rip, transport = RESOLVERS[r]
    cycle_start = START + timedelta(minutes=15 * cycle)
    cid = check_id(observer, cycle_start, TARGET, "A")
    doc: dict[str, Any] = {
        "@timestamp": iso(ts),
        "ecs.version": ECS_VERSION,
        # data_stream.namespace is left to the sink: it writes the namespace it delivers to
        "data_stream.type": "logs",
        "data_stream.dataset": CHECK_DATASET,
        "event.kind": "event",
        "event.category": ["network"],
        "event.dataset": CHECK_DATASET,
        "event.duration": 1_500_000 + 1000 * r,
        "edgewatch.check.id": cid,
        "edgewatch.cycle.id": f"cycle-{cycle}",
        "edgewatch.schema": SCHEMA_VERSION,
        "observer.name": observer,
        "observer.geo.name": "lab-eu",
        "observer.geo.country_iso_code": "DE",
        "dns.question.name": TARGET,
        "dns.question.type": "A",
        "dns.type": "answer",
        "edgewatch.resolver.name": name,
        "edgewatch.resolver.provider": "lab",
        "edgewatch.resolver.transport": transport,
        "edgewatch.resolver.ip": rip,
    }
    if address is None:
        doc.update({"event.outcome": "failure", "event.type": ["info"],
                    "error.type": "dns.timeout",
                    "error.message": f"no answer from {rip} within 2.0s"})
        return check_doc_id(cid, name, None), doc
    addresses = _addresses(cycle, r)
    o3 = address.split(".")
    doc.update({
        "event.outcome": "success",
        "event.type": ["connection"],
        "dns.response_code": "NOERROR",
        "dns.answers": [
            {"name": TARGET, "type": "CNAME", "class": "IN", "ttl": 300,
             "data": "acme.edge.example.test"},
            *({"name": "acme.edge.example.test", "type": "A", "class": "IN",
               "ttl": 20 + cycle % 40, "data": a} for a in addresses)],
        "dns.header_flags": ["RD", "RA"],
        "dns.resolved_ip": addresses,
        "edgewatch.dns.answer_count": len(addresses),
        "edgewatch.dns.cname_chain": [TARGET, "acme.edge.example.test"],
        "edgewatch.dns.ttl": 20 + cycle % 40,
        "resolve.rtt.us": 800 + 37 * r,
        "edgewatch.dns.answer_set_hash": answer_set_hash(addresses),
        "edgewatch.dns.ecs.source_prefix": 24,
        "edgewatch.dns.ecs.scope_prefix": 0,
        "edgewatch.dns.tcp_fallback": False,
        "edgewatch.resolver.ecs_subnet": "198.51.100.0/24",
        "destination.ip": address,
        "destination.port": 443,
        "destination.domain": f"a{o3[2]}-{o3[3]}.deploy.edge.example.test",
        "destination.as.number": 64500 + (r >= 3),
        "destination.as.organization.name": "Example Edge",
        "edgewatch.destination.prefix": f"127.{o3[1]}.0.0/16",
        "edgewatch.destination.prefix24": f"127.{o3[1]}.{o3[2]}.0/24",
        "edgewatch.tcp.established": True,
        "tcp.rtt.connect.us": 300 + r,
        "tls.established": True,
        "edgewatch.tls.verified": True,
        "tls.rtt.handshake.us": 2100 + r,
        "tls.version": "1.3",
        "tls.version_protocol": "tls",
        "tls.cipher": "TLS_AES_256_GCM_SHA384",
        "tls.server.x509.subject.common_name": [TARGET],
        "tls.server.x509.issuer.common_name": ["edgewatch lab CA"],
        "tls.server.x509.alternative_names": [TARGET, f"*.{TARGET}"],
        "tls.server.x509.not_after": "2027-01-01T00:00:00.000Z",
        "tls.server.x509.not_before": "2026-01-01T00:00:00.000Z",
        "tls.server.hash.sha256": _fp(address).upper(),
        "http.response.status_code": 200,
        "http.rtt.response_header.us": 5300 + r,
        "edgewatch.run.id": _fp(f"run|{name}|{address}|{cycle // 8}")[:24],
        "edgewatch.run.seq": cycle % 8 + 1,
        "edgewatch.run.start": iso(START + timedelta(minutes=15 * (cycle - cycle % 8))),
    })
    return check_doc_id(cid, name, address), doc


def check_records(count: int, first: int = 0, observer: str = "probe-1") -> list[Record]:
    """Records ``first .. count-1`` of an endless, deterministic stream of check documents."""
    out: list[Record] = []
    for i, (rid, doc) in enumerate(_stream(observer)):
        if i >= count:
            break
        if i >= first:
            out.append(Record(kind="check", id=rid, doc=doc))
    return out


def _stream(observer: str) -> Iterator[tuple[str, dict[str, Any]]]:
    cycle = 0
    while True:
        for r in range(len(RESOLVERS)):
            ts = START + timedelta(minutes=15 * cycle, milliseconds=3 * r)
            if (cycle * 7 + r) % 23 == 0:
                yield check_doc(cycle, r, None, ts, observer)
                continue
            for address in _addresses(cycle, r):
                yield check_doc(cycle, r, address, ts, observer)
        cycle += 1


def run_record(run_id: str, version: int, *, start: datetime, last_seen: datetime,
               checks: int, gaps: int = 0, end: datetime | None = None,
               address: str = "127.60.1.5", resolver: int = 0) -> Record:
    """A run summary built by the production builder (``pipeline.documents.run_record``).

    ``version`` is what the caller expects the snapshot's version to be; it is derived by
    ``pipeline.runs.Run.version`` from checks, gaps and end, and a mismatch is the caller's
    mistake, so it raises rather than writing a summary production could never write.
    """
    name, rip, _ = RESOLVERS[resolver]
    key = RunKey(observer="probe-1", name=TARGET, rtype="A", resolver=name, address=address)
    run = Run(key=key, id=run_id, start=start, last_seen=last_seen, checks=checks, gaps=gaps,
              end=end, resolver_ip=rip)
    if run.version != version:
        raise ValueError(f"run {run_id}: version {version} given, production derives "
                         f"{run.version} from checks={checks} gaps={gaps} end={end}")
    info = NetInfo(address=address, asn=64500, organization=None, prefix="127.60.0.0/16",
                   prefix24=".".join(address.split(".")[:3]) + ".0/24")
    return documents.run_record(run, info, "a1-5.deploy.edge.example.test")
