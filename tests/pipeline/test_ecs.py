"""The documents and mappings are true to Elastic's own field definitions (ECS 9.2.0).

ECS's flat field list is pinned in tests/data (an extract of ``generated/ecs/ecs_flat.yml`` at
tag v9.2.0, see tests/data/README.md). The rules checked, for the effective mappings of both
index templates and for real documents built by the production builders:

- a field with an ECS name has ECS's type (keyword, constant_keyword and wildcard are one family;
  ``match_only_text`` is not ``text``), and an ECS object is not mapped ``nested``;
- a value of a field for which ECS lists allowed values is one of them (event.kind, .category,
  .type, .outcome), an ECS ``array`` field is written as a list, and a value has the JSON shape
  of its ECS type;
- a field that is not in ECS sits under ``edgewatch.*``, or is one of Heartbeat's timing fields
  (``tcp.rtt.*``, ``tls.rtt.*``, ``resolve.*``, ``http.rtt.*``), the documented exceptions.

Each rule is also fed a deliberate violation, so the checker is shown to catch what it claims.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import dns.message
import dns.rrset
import pytest
from ecs_rules import ECS, ECS_FILE, document_problems, flatten, mapping_problems

from pipeline.config import Resolver
from pipeline.documents import (
    CAP_SKIPPED,
    ECS_VERSION,
    AddressFacts,
    CheckContext,
    check_records,
    run_record,
)
from pipeline.es import names, templates
from pipeline.probe.connect import Certificate, ConnectResult
from pipeline.probe.dns import DnsResult
from pipeline.probe.dns_answer import classify_message
from pipeline.probe.netinfo import NetInfo
from pipeline.probe.rdns import RdnsResult
from pipeline.runs import Assignment, Run, RunKey

T = datetime(2026, 3, 2, 0, 0, 5, tzinfo=UTC)
QNAME = "acme-v02.api.lab.test"


# --- real documents, from the production builders ---------------------------------------------


def _dns_result(resolver: Resolver) -> DnsResult:
    """A DnsResult built from a real parsed message, so dns.answers comes from the probe code."""
    query = dns.message.make_query(QNAME, "A")
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text(f"{QNAME}.", 300, "IN", "CNAME",
                                               "e1.a.edge.lab.test."))
    response.answer.append(dns.rrset.from_text("e1.a.edge.lab.test.", 20, "IN", "A",
                                               "127.60.0.10", "127.60.0.11", "127.60.0.12"))
    answer = classify_message(response, QNAME, "A")
    assert answer.error_type is None, answer
    return DnsResult(resolver, QNAME, "A", rcode=answer.rcode, flags=answer.flags,
                     addresses=answer.addresses, cname_chain=answer.cname_chain, rtt_us=812,
                     ecs_source_prefix=24, ecs_scope_prefix=0, tcp_fallback=True,
                     raw=response.to_wire(), answers=answer.records)


def sample_documents() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    resolver = Resolver("lab-ecs", "127.53.1.5", provider="lab", client_subnet="198.51.100.0/24")
    ok = _dns_result(resolver)
    failed = DnsResult(resolver, QNAME, "A", error_type="dns.timeout",
                       error_message="no answer within 0.4s", rtt_us=400000)
    cert = Certificate(QNAME, "edgewatch lab CA", (QNAME,), T - timedelta(days=1),
                       T + timedelta(days=90), "ab" * 32, parse_error="subject: ValueError: x")
    good = ConnectResult("127.60.0.10", 443, QNAME, True, 90, True, True, 700, "TLSv1.3",
                         "TLS_AES_256_GCM_SHA384", cert, 200, 1500)
    bad = ConnectResult("127.60.0.11", 443, QNAME, True, 80, True, False, 650, "TLSv1.2",
                        "ECDHE-RSA-AES128-GCM-SHA256", cert, error_type="tls.verify",
                        error_message="certificate has expired")
    geo = {"name": "lab", "city_name": "Frankfurt", "continent_code": "EU",
           "continent_name": "Europe", "country_iso_code": "DE", "country_name": "Germany",
           "region_iso_code": "DE-HE", "region_name": "Hesse", "postal_code": "60311",
           "timezone": "Europe/Berlin"}
    ctx = CheckContext("cyc", "chk", "lab-observer", geo, QNAME, "A", 443, "lab")
    addrs = ("127.60.0.10", "127.60.0.11", "127.60.0.12")
    nets = {a: NetInfo(a, 64600, "LAB-EDGE-A", "127.60.0.0/24", "127.60.0.0/24") for a in addrs}
    ptr = {"127.60.0.10": RdnsResult("127.60.0.10", "a127-60-0-10.deploy.edge.lab.test", 3600)}
    runs = {a: Assignment(f"run-{a}", 3, T - timedelta(hours=1)) for a in addrs}
    facts = AddressFacts({addrs[0]: good, addrs[1]: bad}, ptr, nets, runs,
                         skipped={addrs[2]: CAP_SKIPPED},
                         allowlist={a: (["firewall"], ["stale"]) for a in addrs})
    checks = check_records(ctx, T, ok, facts)
    checks += check_records(ctx, T, failed, AddressFacts())
    key = RunKey("lab-observer", QNAME, "A", "lab-ecs", "127.60.0.10")
    closed = Run(key, "run-1", T - timedelta(hours=2), T - timedelta(minutes=15), checks=8,
                 gaps=1, end=T, resolver_ip="127.53.1.5")
    open_run = Run(key, "run-2", T, T)
    run_docs = [run_record(closed, nets[addrs[0]], "a127.lab.test").doc,
                run_record(open_run).doc]
    return [r.doc for r in checks], run_docs


# --- the tests --------------------------------------------------------------------------------


def test_the_pinned_ecs_extract_is_ecs_9_2_0() -> None:
    data = json.loads(ECS_FILE.read_text())
    assert data["version"] == ECS_VERSION == "9.2.0"
    assert data["_source"]["tag"] == "v9.2.0" and len(ECS) > 1800
    assert ECS["dns.answers"]["type"] == "object" and ECS["error.message"]["type"] == (
        "match_only_text")


@pytest.mark.parametrize("template", [names.CHECK_INDEX_TEMPLATE, names.RUNS_INDEX_TEMPLATE])
def test_effective_mappings_follow_ecs(template: str) -> None:
    properties = templates.effective_mappings(template)["properties"]
    assert mapping_problems(properties) == []


def test_check_mapping_declares_ecs_types_exactly_where_ecs_is_strict() -> None:
    fields = templates.leaf_fields(
        templates.effective_mappings(names.CHECK_INDEX_TEMPLATE)["properties"])
    for name in ("data_stream.type", "data_stream.dataset", "data_stream.namespace"):
        assert fields[name]["type"] == "constant_keyword", name
    assert fields["data_stream.type"]["value"] == "logs"
    assert fields["data_stream.dataset"]["value"] == "edgewatch.check"
    assert fields["error.message"]["type"] == "match_only_text"
    for name in ("dns.answers.name", "dns.answers.type", "dns.answers.class",
                 "dns.answers.ttl", "dns.answers.data"):
        assert name in fields and fields[name]["type"] == ECS[name]["type"], name


def test_documents_from_the_builders_follow_ecs() -> None:
    checks, runs = sample_documents()
    for doc in checks + runs:
        assert document_problems(doc) == [], doc
    # every kind of check document is in the sample: connected, refused TLS, capped, DNS failed
    assert [d["event.type"] for d in checks] == [["connection"], ["connection"], ["info"],
                                                ["info"]]
    assert {d["event.outcome"] for d in checks} == {"success", "failure"}


def test_documents_carry_ecs_values_not_just_names() -> None:
    checks, runs = sample_documents()
    good, bad, capped, failed = checks
    assert good["ecs.version"] == "9.2.0" and runs[0]["ecs.version"] == "9.2.0"
    assert (good["tls.version"], good["tls.version_protocol"]) == ("1.3", "tls")
    assert (bad["tls.version"], bad["tls.version_protocol"]) == ("1.2", "tls")
    assert re.fullmatch(r"[0-9A-F]{64}", good["tls.server.hash.sha256"])
    assert good["dns.type"] == failed["dns.type"] == "answer"
    assert (good["data_stream.type"], good["data_stream.dataset"],
            good["data_stream.namespace"]) == ("logs", "edgewatch.check", "lab")
    assert good["dns.answers"] == [
        {"name": QNAME, "type": "CNAME", "class": "IN", "ttl": 300, "data": "e1.a.edge.lab.test"},
        *({"name": "e1.a.edge.lab.test", "type": "A", "class": "IN", "ttl": 20, "data": a}
          for a in ("127.60.0.10", "127.60.0.11", "127.60.0.12"))]
    assert "dns.answers" not in failed and "edgewatch.connect.skipped" in capped
    assert (good["edgewatch.allowlist.allowed"], good["edgewatch.allowlist.denied"]) == (
        ["firewall"], ["stale"])
    assert not any(k.startswith("edgewatch.allowlist.") for k in failed)  # no address, no verdict
    assert all(d["event.category"] == ["network"] for d in checks)


def test_every_emitted_field_is_in_the_strict_mapping() -> None:
    checks, runs = sample_documents()
    for docs, template in ((checks, names.CHECK_INDEX_TEMPLATE), (runs, names.RUNS_INDEX_TEMPLATE)):
        declared = set(templates.leaf_fields(templates.effective_mappings(template)["properties"]))
        emitted = {f for d in docs for f, vs in flatten(d).items()
                   if not any(isinstance(v, dict) for v in vs)}
        assert emitted - declared == set(), template


# --- the checker catches what it claims -------------------------------------------------------


def test_the_checker_refuses_wrong_types_nested_objects_and_stray_fields() -> None:
    props = templates.effective_mappings(names.CHECK_INDEX_TEMPLATE)["properties"]
    broken = json.loads(json.dumps(props))
    broken["error"]["properties"]["message"] = {"type": "text"}
    broken["dns"]["properties"]["answers"]["type"] = "nested"
    broken["tls"]["properties"]["verified"] = {"type": "boolean"}
    broken["destination"]["properties"]["port"] = {"type": "keyword"}
    broken["data_stream"]["properties"]["type"] = {"type": "wildcard"}  # keyword family: fine
    assert sorted(mapping_problems(broken)) == [
        "destination.port: mapped keyword, ECS 9.2.0 says long",
        "dns.answers: mapped nested, ECS has an object",
        "error.message: mapped text, ECS 9.2.0 says match_only_text",
        "tls.verified: not an ECS field and not under edgewatch.*",
    ]


def test_the_checker_refuses_values_outside_ecs() -> None:
    checks, _ = sample_documents()
    doc = {**checks[0], "event.type": ["probe"], "event.kind": "check", "event.outcome": "ok",
           "event.category": "network", "dns.answer.ttl": 5, "tls.server.x509.not_after": "soon",
           "dns.answers": [{"name": QNAME, "type": "A", "class": "IN", "ttl": "20"}]}
    problems = document_problems(doc)
    for expected in ("event.type: ['probe']", "event.kind: ['check']", "event.outcome: ['ok']",
                     "event.category: ECS normalises it to an array",
                     "dns.answer.ttl: not an ECS field", "tls.server.x509.not_after: ['soon']",
                     "dns.answers.ttl: ['20']"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
