"""The hand-made documents every Vega panel's query is run on, and how a panel is run.

Check documents and run summaries follow schema 2 of docs/DOCUMENTS.md, IPv4 (A) and IPv6 (AAAA)
mixed as a dual-stack endpoint produces them: the IPv6 addresses are unique-local (fd00::/8),
``edgewatch.destination.prefix24`` is their /48, their PTR names are the lab's ip6.arpa style
(the address with ``:`` → ``-``). They go into a data stream and an index created by edgewatch's
own templates (``pipeline.es.installer``: strict mappings, so a document that strays from the
schema fails rather than charting wrong). Shared by the query tests and ``dump_panels.py``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers
from kibana_vega import (
    KibanaContext,
    data_sources,
    leftover_placeholders,
    resolve_property,
    translate_url,
    vega_specs,
)
from schema_names import SCHEMA

from pipeline.es import installer, names
from pipeline.es.cluster import detect

T0 = datetime(2025, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
D = timedelta(days=1)
WINDOW = KibanaContext(T0, T0 + 2 * D)  # the time picker: two days from T0
HOST = "api.example.test"
ECS_VERSION = "9.2.0"

# IPv6 edges: two /64s of one /48 (fd00:60::/48), and two more /48s.
V6_A = "fd00:60::10"
V6_B = "fd00:60:0:1::11"  # same /48 as V6_A
V6_C = "fd00:61::10"
V6_D = "fd00:62::10"
PTR_A = "afd00-60--10.deploy.edge.example"
PTR_B = "afd00-60-0-1--11.deploy.edge.example"


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def family(ip: str) -> str:
    """The question type that answers with this address."""
    return "AAAA" if ipaddress.ip_address(ip).version == 6 else "A"


@dataclass(frozen=True)
class Check:
    at: datetime
    resolver: str
    ip: str | None = None
    error: str | None = None  # error.type; None = success
    domain: str | None = None
    tcp_us: int | None = None
    tls_us: int | None = None
    qtype: str | None = None  # dns.question.type of a check without an address

    @property
    def question_type(self) -> str:
        return family(self.ip) if self.ip else (self.qtype or "A")


RESOLVER_IPS = {"quad9": "9.9.9.9", "cloudflare": "1.1.1.1", "google": "8.8.8.8"}

CHECKS_V4 = [
    Check(T0, "quad9", "192.0.2.10", domain="a1.edge.example", tcp_us=10_000, tls_us=20_000),
    Check(T0, "quad9", "192.0.2.11", domain="a2.edge.example", tcp_us=12_000, tls_us=24_000),
    Check(T0 + H, "quad9", "192.0.2.10", domain="a1.edge.example", tcp_us=11_000, tls_us=22_000),
    Check(T0 + H, "quad9", "198.51.100.7", error="tls.handshake", tcp_us=15_000),  # no PTR
    Check(T0, "cloudflare", "192.0.2.10", domain="a1.edge.example", tcp_us=9_000, tls_us=18_000),
    Check(T0 + H, "cloudflare", "192.0.2.10", domain="a1.edge.example", tcp_us=9_500,
          tls_us=19_000),
    Check(T0 + 2 * H, "cloudflare", error="dns.timeout"),
    Check(T0, "google", "203.0.113.5", domain="b1.edge.example", tcp_us=30_000, tls_us=60_000),
    Check(T0, "google", "203.0.113.6", error="tcp.timeout", domain="b2.edge.example"),
    Check(T0 + 2 * H, "google", error="dns.servfail"),
    Check(T0 + 2 * H, "google", error="dns.servfail"),
    # outside the time picker's range: must not count anywhere
    Check(T0 - D, "quad9", "192.0.2.99", domain="old.edge.example", tcp_us=1, tls_us=1),
    Check(T0 + 3 * D, "google", error="dns.nxdomain"),
]

CHECKS_V6 = [
    Check(T0, "quad9", V6_A, domain=PTR_A, tcp_us=14_000, tls_us=28_000),
    Check(T0 + H, "quad9", V6_A, domain=PTR_A, tcp_us=13_000, tls_us=26_000),
    Check(T0 + H, "quad9", V6_B, domain=PTR_B, tcp_us=12_500, tls_us=25_000),
    Check(T0 + H, "quad9", V6_C, error="tcp.timeout"),  # no PTR
    Check(T0, "cloudflare", V6_B, domain=PTR_B, tcp_us=8_000, tls_us=16_000),
    Check(T0 + 2 * H, "cloudflare", error="dns.timeout", qtype="AAAA"),
    Check(T0, "google", V6_A, domain=PTR_A, tcp_us=31_000, tls_us=62_000),
    # a dual-stack edge host: the same PTR name as the IPv4 203.0.113.5
    Check(T0 + H, "google", V6_D, error="tls.handshake", domain="b1.edge.example", tcp_us=40_000),
    # outside the range
    Check(T0 - D, "quad9", "fd00:60::99", domain="afd00-60--99.deploy.edge.example", tcp_us=1,
          tls_us=1),
    Check(T0 + 3 * D, "google", V6_A, domain=PTR_A, tcp_us=1, tls_us=1),
]

CHECKS = CHECKS_V4 + CHECKS_V6


@dataclass(frozen=True)
class Run:
    resolver: str
    ip: str
    start: datetime
    last_seen: datetime
    end: datetime | None = None
    domain: str | None = None

    @property
    def duration_s(self) -> int:
        return int(((self.end or self.last_seen) - self.start).total_seconds())


RUNS_V4 = [
    # overlap the picked range [T0, T0 + 2d]
    Run("quad9", "192.0.2.10", T0 - 2 * D, T0 + H, domain="a1.edge.example"),  # open, 2d 1h
    Run("quad9", "192.0.2.11", T0, T0, end=T0 + H, domain="a2.edge.example"),  # 1 h
    Run("quad9", "198.51.100.7", T0 + H, T0 + H),  # open, 0 s
    Run("cloudflare", "192.0.2.10", T0, T0 + H, domain="a1.edge.example"),  # open, 1 h
    Run("google", "203.0.113.5", T0, T0, end=T0 + 30 * M),  # 30 min
    # started 20 days before the range and still answered inside it: counts (overlap)
    Run("google", "192.0.2.10", T0 - 20 * D, T0 + 10 * H, end=T0 + 11 * H,
        domain="a1.edge.example"),  # 20 d 11 h
    # do not overlap the range
    Run("google", "203.0.113.6", T0 - 10 * D, T0 - 9 * D, end=T0 - 9 * D + H),
    Run("google", "192.0.2.10", T0 + 3 * D, T0 + 3 * D),
]

RUNS_V6 = [
    Run("quad9", V6_A, T0 - 35 * D, T0 + H, domain=PTR_A),  # open, 35 d 1 h
    Run("quad9", V6_B, T0 + H, T0 + H, end=T0 + 2 * H, domain=PTR_B),  # 1 h
    Run("quad9", V6_C, T0 + 50 * M, T0 + H),  # open, 10 min
    Run("cloudflare", V6_B, T0 - 10 * H, T0 + H, domain=PTR_B),  # open, 11 h
    Run("google", V6_A, T0, T0, end=T0 + 20 * M, domain=PTR_A),  # 20 min
    Run("google", V6_D, T0 + H, T0 + H, end=T0 + H + 40 * M, domain="b1.edge.example"),  # 40 min
    # do not overlap the range
    Run("quad9", "fd00:60::99", T0 - 5 * D, T0 - 4 * D, end=T0 - 4 * D + H),
    Run("google", V6_A, T0 + 3 * D, T0 + 3 * D),
]

RUNS = RUNS_V4 + RUNS_V6


def prefix24(ip: str) -> str:
    """The /24 of an IPv4 address, the /48 of an IPv6 one (DOCUMENTS.md)."""
    address = ipaddress.ip_address(ip)
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


CERT_NOT_AFTER = T0 + 30 * D  # every hand-made certificate: 30 days past T0


def certificate_fields(edge: str) -> dict[str, Any]:
    """The leaf certificate an edge presents: one per edge name, all from one issuer."""
    return {
        "tls.server.x509.subject.common_name": [HOST],
        "tls.server.x509.issuer.common_name": ["Example Edge CA"],
        "tls.server.x509.not_before": iso(T0 - 60 * D),
        "tls.server.x509.not_after": iso(CERT_NOT_AFTER),
        "tls.server.hash.sha256": hashlib.sha256(edge.encode()).hexdigest().upper(),
    }


def _answer_fields(c: Check) -> dict[str, Any]:
    assert c.ip is not None
    doc: dict[str, Any] = {
        "dns.type": "answer",
        "dns.response_code": "NOERROR",
        "dns.resolved_ip": [c.ip],
        "edgewatch.dns.answer_count": 1,
        "edgewatch.dns.ttl": 300,
        "destination.ip": c.ip,
        "destination.port": 443,
        "edgewatch.destination.prefix24": prefix24(c.ip),
        "edgewatch.run.id": f"run-{c.resolver}-{c.ip}",
        "edgewatch.run.seq": 1,
        "edgewatch.run.start": iso(c.at),
    }
    if c.domain:
        doc["destination.domain"] = c.domain
    if c.tcp_us is not None:
        doc.update({"edgewatch.tcp.established": True, "tcp.rtt.connect.us": c.tcp_us})
    if c.tls_us is not None:
        doc.update({"tls.established": True, "edgewatch.tls.verified": True,
                    "tls.rtt.handshake.us": c.tls_us, "tls.version": "1.3",
                    "tls.version_protocol": "tls"})
        doc.update(certificate_fields(c.domain or c.ip))
    return doc


def check_doc(c: Check) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": iso(c.at),
        "event.kind": "event",
        "event.dataset": "edgewatch.check",
        "event.outcome": "failure" if c.error else "success",
        "event.duration": 1_000_000,
        "event.category": ["network"],
        "event.type": ["connection"] if c.ip is not None else ["info"],
        "ecs.version": ECS_VERSION,
        "edgewatch.schema": SCHEMA,
        "edgewatch.check.id": f"chk-{c.at:%Y%m%d%H%M}",
        "edgewatch.cycle.id": f"cyc-{c.at:%Y%m%d%H%M}",
        "observer.name": "probe-1",
        "dns.question.name": HOST,
        "dns.question.type": c.question_type,
        "edgewatch.resolver.name": c.resolver,
        "edgewatch.resolver.ip": RESOLVER_IPS[c.resolver],
        "edgewatch.resolver.transport": "udp",
    }
    if c.ip is not None:
        doc.update(_answer_fields(c))
    elif c.error == "dns.servfail":
        doc["dns.response_code"] = "SERVFAIL"
    if c.error:
        doc.update({"error.type": c.error, "error.message": f"simulated {c.error}"})
    return doc


def run_doc(r: Run) -> dict[str, Any]:
    run_id = hashlib.sha1(f"{r.resolver}|{r.ip}|{r.start}".encode()).hexdigest()[:20]
    doc: dict[str, Any] = {
        "@timestamp": iso(r.start),
        "event.kind": "state",
        "event.dataset": "edgewatch.run",
        "ecs.version": ECS_VERSION,
        "edgewatch.schema": SCHEMA,
        "edgewatch.run.version": 1,
        "observer.name": "probe-1",
        "dns.question.name": HOST,
        "dns.question.type": family(r.ip),
        "edgewatch.resolver.name": r.resolver,
        "edgewatch.resolver.ip": RESOLVER_IPS[r.resolver],
        "destination.ip": r.ip,
        "edgewatch.destination.prefix24": prefix24(r.ip),
        "edgewatch.run.id": run_id,
        "edgewatch.run.start": iso(r.start),
        "edgewatch.run.last_seen": iso(r.last_seen),
        "edgewatch.run.open": r.end is None,
        "edgewatch.run.checks": 1,
        "edgewatch.run.gaps": 0,
        "edgewatch.run.duration.s": r.duration_s,
        "edgewatch.run.observed.s": int((r.last_seen - r.start).total_seconds()),
    }
    if r.end is not None:
        doc["edgewatch.run.end"] = iso(r.end)
    if r.domain:
        doc["destination.domain"] = r.domain
    return doc


@dataclass(frozen=True)
class Indices:
    checks: str
    runs: str


def load(es: Elasticsearch, made: Indices, checks: list[dict[str, Any]],
         runs: list[dict[str, Any]]) -> None:
    """Check and run documents into the installed data stream and runs index; all must go in."""
    actions = [{"_op_type": "create", "_index": made.checks, "_source": c} for c in checks]
    actions += [{"_op_type": "index", "_index": made.runs, "_id": r["edgewatch.run.id"],
                 "_source": r} for r in runs]
    ok, errors = helpers.bulk(es, actions, raise_on_error=False, refresh="true")
    assert not errors and ok == len(actions), errors[:3]


def load_documents(es: Elasticsearch, made: Indices) -> None:
    """CHECKS and RUNS into the installed data stream and runs index."""
    load(es, made, [check_doc(c) for c in CHECKS], [run_doc(r) for r in RUNS])


@contextmanager
def installed_indices(es: Elasticsearch, es_url: str, prefix: str = "kib") -> Iterator[Indices]:
    """The check data stream and runs index of a fresh namespace, made by edgewatch's setup."""
    ns = f"{prefix}{uuid.uuid4().hex[:8]}"
    outcomes = installer.install(es, ns, detect(es, es_url))
    assert not [o for o in outcomes if o.action == installer.CONFLICT], outcomes
    made = Indices(names.check_data_stream(ns), names.runs_index(ns))
    try:
        yield made
    finally:
        es.options(ignore_status=404).indices.delete(index=made.runs)
        # A data stream is deleted through its own API (absent on the devstack node, whose data
        # folder is thrown away after the session anyway).
        es.options(ignore_status=(400, 404, 405)).indices.delete_data_stream(name=made.checks)


def run_panel(es: Elasticsearch, objects: list[dict[str, Any]], indices: Indices, vis_id: str,
              ctx: KibanaContext = WINDOW) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Translate the panel's data.url as Kibana does, search, return (rows, search body)."""
    spec = vega_specs(objects)[vis_id]
    (source,) = data_sources(spec)
    search = translate_url(source["url"], ctx)
    assert leftover_placeholders(search.body) == [], search.body
    # The spec searches every namespace (index pattern); the test searches its own namespace.
    target = indices.checks if fnmatch.fnmatch(indices.checks, search.index) else indices.runs
    assert fnmatch.fnmatch(target, search.index), (target, search.index)
    reply = es.search(index=target, body=search.body, ignore_unavailable=True).body
    assert reply["_shards"]["failed"] == 0, reply["_shards"]
    rows = resolve_property(reply, source["format"]["property"])
    assert isinstance(rows, list)
    return rows, search.body


def by_key(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r.get("key_as_string", r["key"])): r for r in rows}


def percentiles(agg: dict[str, Any]) -> dict[float, float | None]:
    return {p["key"]: p["value"] for p in agg["values"]}


ALL_PANELS = [
    "edgewatch-unique-ips-per-resolver", "edgewatch-unique-ips-over-time",
    "edgewatch-new-ips-over-time", "edgewatch-run-length-distribution",
    "edgewatch-failures-by-resolver-kind", "edgewatch-most-stable-ips",
    "edgewatch-edge-hostnames", "edgewatch-timings-over-time",
    "edgewatch-handshake-per-resolver",
]
# Checked figure by figure against a lab store (test_kibana_lab_panels.py); here they only go
# through the generic checks (filters, time picker, the fields the chart reads).
LAB_CHECKED_PANELS = [
    "edgewatch-run-timeline", "edgewatch-status-now", "edgewatch-certificates",
    "edgewatch-allowlist-coverage",
]
ALL_PANELS += LAB_CHECKED_PANELS


@contextmanager
def loaded_store(es: Elasticsearch, es_url: str, ns: str, run_config: Path,
                 edgewatch: Callable[..., str]) -> Iterator[Indices]:
    """A lab run's store (``run_config``'s) put into the node through ``edgewatch setup`` and
    ``edgewatch load`` in namespace ``ns``, as a person would; removed again afterwards."""
    work = run_config.parent
    load_config = work / "load.toml"
    load_config.write_text(run_config.read_text() + f"""
[elasticsearch]
url = "{es_url}"
namespace = "{ns}"
spool_dir = "{work / 'spool'}"
dead_letter_dir = "{work / 'dead-letter'}"
""")
    edgewatch("setup", "--config", str(load_config))
    out = edgewatch("load", "--config", str(load_config), "--quiet")
    assert "0 refused" in out, out
    made = Indices(names.check_data_stream(ns), names.runs_index(ns))
    es.indices.refresh(index=[made.checks, made.runs])
    try:
        yield made
    finally:
        es.options(ignore_status=404).indices.delete(index=made.runs)
        es.options(ignore_status=(400, 404, 405)).indices.delete_data_stream(name=made.checks)


EDGEWATCH = [sys.executable, "-m", "pipeline"]


def edgewatch(*args: str, prefix: list[str] | None = None,
              overrides: dict[str, str] | None = None) -> str:
    """An ``edgewatch`` command as a person runs it (``prefix``: inside the lab's namespace),
    without the test session's ES_/EDGEWATCH_ settings unless ``overrides`` gives some."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    env.update(overrides or {})
    proc = subprocess.run([*(prefix or []), *EDGEWATCH, *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout
