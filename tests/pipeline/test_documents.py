"""Documents as built by the pipeline: every field they carry is declared in mappings/.

The check data stream is strict, so a field the builders emit but the mappings lack would be
rejected at index time; this test catches that drift before any cluster does.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.config import Resolver
from pipeline.documents import AddressFacts, CheckContext, check_records, run_record
from pipeline.probe.connect import Certificate, ConnectResult
from pipeline.probe.dns import AnswerAddress, DnsResult
from pipeline.probe.netinfo import NetInfo
from pipeline.probe.rdns import RdnsResult
from pipeline.runs import Assignment, Run, RunKey

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings" / "component_templates"
T = datetime(2026, 3, 2, 0, 0, 5, tzinfo=UTC)


def _fields(props: dict, prefix: str = "") -> set[str]:
    out = set()
    for name, spec in props.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            out |= _fields(spec["properties"], path + ".")
        else:
            out.add(path)
    return out


def _declared(*files: str) -> set[str]:
    fields: set[str] = set()
    for f in files:
        body = json.loads((MAPPINGS / f).read_text())
        fields |= _fields(body["template"]["mappings"].get("properties", {}))
    return fields


def _sample():
    resolver = Resolver("lab-ecs", "127.53.1.5", provider="lab", client_subnet="198.51.100.0/24")
    ok = DnsResult(resolver, "acme-v02.api.lab.test", "A", rcode="NOERROR",
                   flags=("RD", "RA"), addresses=(AnswerAddress("127.60.0.10", 20),
                                                  AnswerAddress("127.60.0.11", 20)),
                   cname_chain=("acme-v02.api.lab.test", "e1.a.edge.lab.test"), rtt_us=812,
                   ecs_source_prefix=24, ecs_scope_prefix=24, tcp_fallback=True,
                   raw=b"\x12\x34wire")
    failed = DnsResult(resolver, "acme-v02.api.lab.test", "A", error_type="dns.timeout",
                       error_message="no answer within 0.4s", rtt_us=400000)
    cert = Certificate("acme-v02.api.lab.test", "edgewatch lab CA", ("acme-v02.api.lab.test",),
                       T - timedelta(days=1), T + timedelta(days=90), "ab" * 32)
    good = ConnectResult("127.60.0.10", 443, "acme-v02.api.lab.test", True, 90, True, True, 700,
                         "TLSv1.3", "TLS_AES_256_GCM_SHA384", cert, 200, 1500)
    bad = ConnectResult("127.60.0.11", 443, "acme-v02.api.lab.test", True, 80, True, False, 650,
                        "TLSv1.3", "TLS_AES_256_GCM_SHA384", cert, error_type="tls.verify",
                        error_message="certificate has expired")
    ctx = CheckContext("cyc", "chk", "lab-observer", {"name": "lab", "country_iso_code": "ZZ"},
                       "acme-v02.api.lab.test", "A", 443)
    nets = {a: NetInfo(a, 64600, "LAB-EDGE-A", "127.60.0.0/24", "127.60.0.0/24")
            for a in ("127.60.0.10", "127.60.0.11")}
    ptr = {"127.60.0.10": RdnsResult("127.60.0.10", "a127-60-0-10.deploy.edge.lab.test", 3600)}
    runs = {a: Assignment(f"run-{a}", 3, T - timedelta(hours=1)) for a in nets}
    facts = AddressFacts({"127.60.0.10": good, "127.60.0.11": bad}, ptr, nets, runs)
    docs = check_records(ctx, T, ok, facts)
    docs += check_records(ctx, T, failed, AddressFacts())
    key = RunKey("lab-observer", "acme-v02.api.lab.test", "A", "lab-ecs", "127.60.0.10")
    closed = Run(key, "run-1", T - timedelta(hours=2), T - timedelta(minutes=15), checks=8,
                 gaps=1, end=T, resolver_ip="127.53.1.5")
    return docs, [run_record(closed, nets["127.60.0.10"], "a127-60-0-10.deploy.edge.lab.test")]


def test_every_emitted_field_is_mapped() -> None:
    checks, runs = _sample()
    check_fields = _declared("edgewatch-base@mappings.json", "edgewatch-check@mappings.json")
    run_fields = _declared("edgewatch-base@mappings.json", "edgewatch-run@mappings.json")
    emitted_checks = {k for r in checks for k in r.doc}
    emitted_runs = {k for r in runs for k in r.doc}
    assert emitted_checks - check_fields == set()
    assert emitted_runs - run_fields == set()


def test_check_documents_shape() -> None:
    checks, runs = _sample()
    good, bad, failed = (r.doc for r in checks)
    assert good["event.outcome"] == "success" and good["edgewatch.tls.verified"] is True
    assert good["destination.domain"] == "a127-60-0-10.deploy.edge.lab.test"
    assert bad["event.outcome"] == "failure" and bad["error.type"] == "tls.verify"
    assert bad["tls.established"] is True and bad["edgewatch.tls.verified"] is False
    assert "destination.ip" not in failed and failed["error.type"] == "dns.timeout"
    assert good["edgewatch.dns.answer_set_hash"] == bad["edgewatch.dns.answer_set_hash"]
    assert base64.b64decode(good["edgewatch.dns.raw"]) == b"\x12\x34wire"
    assert len({r.id for r in checks}) == 3  # one id per resolver × address
    run = runs[0].doc
    assert run["edgewatch.run.duration.s"] == 7200 and run["edgewatch.run.observed.s"] == 6300
    assert run["edgewatch.run.open"] is False and runs[0].version == 8 + 1 + 1


def test_dns_answers_are_capped_per_document() -> None:
    """A hostile answer of 254 addresses must not put 254 × 254 answer objects in one cycle."""
    from pipeline.documents import MAX_DOC_ANSWERS, dns_answers

    records = tuple((f"a{i}.test", "A", "IN", 60, f"192.0.2.{i}") for i in range(254))
    out = dns_answers(records)
    assert len(out) == MAX_DOC_ANSWERS
    assert [o["data"] for o in out] == [r[4] for r in records[:MAX_DOC_ANSWERS]]
