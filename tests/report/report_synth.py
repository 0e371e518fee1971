"""A synthetic measurement history whose every figure is known, for the report tests.

Three resolvers are queried every 15 minutes for four days:

* ``alpha`` always answers two addresses of 198.51.100.0/23, except that on day 3 one of them is
  briefly replaced by a third and then comes back (a new run, not a continuation);
* ``beta`` rotates one address at a time through 203.0.113.0/24 with segments of 4, 8 and 12
  checks for two days, then switches to two addresses of 192.0.2.0/24 (so an allowlist built on
  day 1 or 2 goes stale on day 3); a DNS timeout every 45th check leaves gaps;
* ``gamma`` always answers one address but fails often: DNS timeouts and SERVFAILs, refused TCP
  connections and failed TLS handshakes on fixed schedules.

Noise that filters must remove: a second observer and a second target.

``History`` emits check documents following docs/DOCUMENTS.md (the mapping is strict, so
indexing proves the field names) and run summaries built by ``pipeline.documents.run_record``
from a ``pipeline.runs.Run`` (so ``version`` is the production's too), writes them as an ndjson
store and indexes them into Elasticsearch. It also keeps the plain facts (every document, every
run, the scenario's true segments) from which the tests compute the expected figures on their own.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import Elasticsearch, helpers

from pipeline import documents, runs
from pipeline.documents import check_doc_id, check_id, iso
from pipeline.probe.netinfo import NetInfo

START = datetime(2026, 3, 2, tzinfo=UTC)
STEP_S = 900
DAYS = 4
STEPS = DAYS * 86400 // STEP_S
OBSERVER = "probe-1"
TARGET = "api.example.test"
SWITCH_STEP = 192  # beta moves to 192.0.2.0/24 at the start of day 3

NET: dict[str, tuple[str, str, int, str | None]] = {
    "198.51.100.10": ("198.51.100.0/24", "198.51.100.0/23", 64500, "e10.a.example.net"),
    "198.51.100.11": ("198.51.100.0/24", "198.51.100.0/23", 64500, "e11.a.example.net"),
    "198.51.100.12": ("198.51.100.0/24", "198.51.100.0/23", 64500, "e12.a.example.net"),
    "198.51.101.20": ("198.51.101.0/24", "198.51.100.0/23", 64500, "e20.a.example.net"),
    "203.0.113.1": ("203.0.113.0/24", "203.0.113.0/24", 64501, "b1.b.example.net"),
    "203.0.113.2": ("203.0.113.0/24", "203.0.113.0/24", 64501, "b2.b.example.net"),
    "203.0.113.3": ("203.0.113.0/24", "203.0.113.0/24", 64501, "b3.b.example.net"),
    "203.0.113.4": ("203.0.113.0/24", "203.0.113.0/24", 64501, "b4.b.example.net"),
    "192.0.2.1": ("192.0.2.0/24", "192.0.2.0/24", 64502, "c1.c.example.net"),
    "192.0.2.2": ("192.0.2.0/24", "192.0.2.0/24", 64502, None),
    # noise, removed by the observer / target filters
    "198.51.100.99": ("198.51.100.0/24", "198.51.100.0/23", 64500, "e99.a.example.net"),
    "203.0.113.200": ("203.0.113.0/24", "203.0.113.0/24", 64501, "b200.b.example.net"),
}
RESOLVERS = ("alpha", "beta", "gamma")
RESOLVER_IP = {"alpha": "127.0.0.11", "beta": "127.0.0.12", "gamma": "127.0.0.13"}


def ts(step: int) -> datetime:
    return START + timedelta(seconds=step * STEP_S)


@dataclass(frozen=True)
class Segment:
    """The scenario's truth: ``ip`` was served from ``start`` (step) until ``end`` (exclusive)."""

    resolver: str
    ip: str
    start: int
    end: int


def beta_segments() -> list[Segment]:
    lengths = (4, 8, 12)
    pools = (["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"],
             ["192.0.2.1", "192.0.2.2"])
    out, pos, j, used = [], 0, 0, [0, 0]
    while pos < STEPS:
        pool = 0 if pos < SWITCH_STEP else 1
        ip = pools[pool][used[pool] % len(pools[pool])]
        used[pool] += 1
        end = min(pos + lengths[j % 3], STEPS)
        out.append(Segment("beta", ip, pos, end))
        pos, j = end, j + 1
    return out


def alpha_segments() -> list[Segment]:
    return [
        Segment("alpha", "198.51.100.10", 0, STEPS),
        Segment("alpha", "198.51.100.11", 0, 250),
        Segment("alpha", "198.51.100.12", 250, 261),
        Segment("alpha", "198.51.100.11", 261, STEPS),
    ]


def gamma_segments() -> list[Segment]:
    return [Segment("gamma", "198.51.101.20", 0, STEPS)]


def dns_failure(resolver: str, step: int) -> str | None:
    if resolver == "beta" and step % 45 == 44:
        return "dns.timeout"
    if resolver == "gamma" and step % 10 == 5:
        return "dns.timeout"
    if resolver == "gamma" and step % 50 == 7:
        return "dns.servfail"
    return None


def connect_failure(resolver: str, step: int) -> str | None:
    if resolver != "gamma":
        return None
    if step % 13 == 11:
        return "tcp.refused"
    if step % 7 == 3:
        return "tls.handshake"
    return None


def tcp_us(resolver: str, step: int, ip: str) -> int:
    return 300 + (step * 37 + int(ip.split(".")[-1]) * 11) % 500 + 100 * RESOLVERS.index(resolver)


def tls_us(resolver: str, step: int, ip: str) -> int:
    return 1000 + (step * 53 + int(ip.split(".")[-1]) * 7) % 2000 + 250 * RESOLVERS.index(resolver)


@dataclass
class Run:
    id: str
    observer: str
    target: str
    resolver: str
    ip: str
    start: datetime
    last_seen: datetime
    end: datetime | None = None
    checks: int = 1
    gaps: int = 0

    @property
    def open(self) -> bool:
        return self.end is None

    def production(self) -> runs.Run:
        """This run as the pipeline's own ``Run``, so version and summary are the production's."""
        key = runs.RunKey(observer=self.observer, name=self.target, rtype="A",
                          resolver=self.resolver, address=self.ip)
        return runs.Run(key=key, id=self.id, start=self.start, last_seen=self.last_seen,
                        checks=self.checks, gaps=self.gaps, end=self.end,
                        resolver_ip=RESOLVER_IP[self.resolver])

    @property
    def version(self) -> int:
        return self.production().version

    def doc(self) -> dict[str, Any]:
        prefix24, prefix, asn, domain = NET[self.ip]
        info = NetInfo(address=self.ip, asn=asn, organization=None, prefix=prefix,
                       prefix24=prefix24)
        return documents.run_record(self.production(), info, domain).doc


@dataclass
class History:
    checks: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, Run] = field(default_factory=dict)
    run_snapshots: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    _open: dict[tuple, Run] = field(default_factory=dict)

    # -- building ---------------------------------------------------------------------------

    def _answer(self, observer: str, target: str, resolver: str, step: int,
                ips: list[str] | None, error: str | None) -> None:
        when = ts(step)
        cid = check_id(observer, when, target, "A")
        base: dict[str, Any] = {
            "@timestamp": iso(when),
            "event.kind": "event",
            "event.dataset": "edgewatch.check",
            "edgewatch.schema": 2,
            "ecs.version": "9.2.0",
            "event.category": ["network"],
            "dns.type": "answer",
            "edgewatch.cycle.id": f"cycle-{observer}-{step}",
            "edgewatch.check.id": cid,
            "observer.name": observer,
            "dns.question.name": target,
            "dns.question.type": "A",
            "edgewatch.resolver.name": resolver,
            "edgewatch.resolver.ip": RESOLVER_IP[resolver],
            "edgewatch.resolver.transport": "udp",
        }
        key_prefix = (observer, target, resolver)
        if ips is None:  # DNS failure: one document, a gap for every open run
            doc = dict(base, **{"event.outcome": "failure", "error.type": error,
                                "error.message": f"synthetic {error}",
                                "_id": check_doc_id(cid, resolver, None)})
            if error == "dns.servfail":
                doc["dns.response_code"] = "SERVFAIL"
            self.checks.append(doc)
            for key, run in self._open.items():
                if key[:3] == key_prefix:
                    run.gaps += 1
                    self.run_snapshots.append((when, run.doc()))
            return
        for key in [k for k in self._open if k[:3] == key_prefix and k[3] not in ips]:
            run = self._open.pop(key)
            run.end = when
            self.run_snapshots.append((when, run.doc()))
        for ip in ips:
            key = (*key_prefix, ip)
            run = self._open.get(key)
            if run is None:
                rid = hashlib.sha1(repr((*key, iso(when))).encode()).hexdigest()[:20]
                run = Run(rid, observer, target, resolver, ip, when, when)
                self._open[key] = self.runs[rid] = run
            else:
                run.last_seen = when
                run.checks += 1
            self.run_snapshots.append((when, run.doc()))
            prefix24, prefix, asn, domain = NET[ip]
            doc = dict(base, **{
                "_id": check_doc_id(cid, resolver, ip),
                "dns.response_code": "NOERROR",
                "dns.resolved_ip": list(ips),
                "edgewatch.dns.answer_count": len(ips),
                "edgewatch.dns.ttl": 60,
                "destination.ip": ip,
                "destination.port": 443,
                "edgewatch.destination.prefix": prefix,
                "edgewatch.destination.prefix24": prefix24,
                "destination.as.number": asn,
                "edgewatch.run.id": run.id,
                "edgewatch.run.seq": run.checks,
                "edgewatch.run.start": iso(run.start),
            })
            if domain:
                doc["destination.domain"] = domain
            failure = connect_failure(resolver, step) if observer == OBSERVER else None
            if failure != "tcp.refused":
                doc["edgewatch.tcp.established"] = True
                doc["tcp.rtt.connect.us"] = tcp_us(resolver, step, ip)
            else:
                doc["edgewatch.tcp.established"] = False
            if failure is None:
                doc["tls.established"] = True
                doc["edgewatch.tls.verified"] = True
                doc["tls.rtt.handshake.us"] = tls_us(resolver, step, ip)
                doc["event.outcome"] = "success"
            else:
                doc["event.outcome"] = "failure"
                doc["error.type"] = failure
                doc["error.message"] = f"synthetic {failure}"
            self.checks.append(doc)

    @classmethod
    def build(cls) -> History:
        h = cls()
        h.segments = alpha_segments() + beta_segments() + gamma_segments()
        for step in range(STEPS):
            for resolver in RESOLVERS:
                error = dns_failure(resolver, step)
                ips = None if error else sorted(
                    s.ip for s in h.segments
                    if s.resolver == resolver and s.start <= step < s.end)
                h._answer(OBSERVER, TARGET, resolver, step, ips, error)
            if step % 4 == 0:  # noise: another observer, another target
                h._answer("probe-2", TARGET, "alpha", step, ["198.51.100.99"], None)
                h._answer(OBSERVER, "other.example.test", "alpha", step, ["203.0.113.200"], None)
        return h

    # -- views for the expected figures -------------------------------------------------------

    def selected_checks(self) -> list[dict[str, Any]]:
        return [d for d in self.checks
                if d["observer.name"] == OBSERVER and d["dns.question.name"] == TARGET]

    def selected_runs(self) -> list[Run]:
        return [r for r in self.runs.values()
                if r.observer == OBSERVER and r.target == TARGET]

    # -- writing ------------------------------------------------------------------------------

    def write_store(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        files: dict[str, list[bytes]] = defaultdict(list)
        for doc in self.checks:
            files[f"checks-{doc['@timestamp'][:10]}"].append(orjson.dumps(doc))
        for when, doc in self.run_snapshots:
            files[f"runs-{when:%Y-%m-%d}"].append(
                orjson.dumps({"_id": doc["edgewatch.run.id"], **doc}))
        # A replayed stale snapshot appended last must not win over the newer versions.
        stale = next(doc for _, doc in self.run_snapshots if doc["edgewatch.run.version"] == 1)
        last_day = max(k for k in files if k.startswith("runs-"))
        files[last_day].append(orjson.dumps({"_id": stale["edgewatch.run.id"], **stale}))
        for stem, lines in files.items():
            (directory / f"{stem}.ndjson").write_bytes(b"\n".join(lines) + b"\n")

    def index(self, es: Elasticsearch, checks_index: str, runs_index: str) -> None:
        def actions():
            for doc in self.checks:
                body = {k: v for k, v in doc.items() if k != "_id"}
                yield {"_op_type": "create", "_index": checks_index, "_id": doc["_id"], **body}
            for run in self.runs.values():
                yield {"_op_type": "index", "_index": runs_index, "_id": run.id,
                       "version": run.version, "version_type": "external_gte", **run.doc()}

        _, errors = helpers.bulk(es, actions(), chunk_size=2000, raise_on_error=False)
        assert not errors, errors[:3]
        es.indices.refresh(index=f"{checks_index},{runs_index}")
