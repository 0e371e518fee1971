"""Dual stack end to end: the observer inside the lab's namespace, IPv4 and IPv6 against the truth.

The `dualstack` scenario puts IPv6 edges in fd00::/8 /48s, so the lab runs in a network
namespace of its own (lab/netns.py) and ``edgewatch run`` runs inside it with ``ip netns exec``
(the lab's ``exec_prefix``), writing the ndjson store. Every A and every AAAA poll, every run,
every edge outcome and the network attribution are compared with the ground truth exactly; the
report's figures per family and together, and the allowlist exports, are derived from the truth.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from e2e_truth import compare_with_truth, polls_of

from lab import netns
from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.report.allowlist import build_allowlist, render_allowlist
from pipeline.report.build import build_report
from pipeline.report.filters import Filters
from pipeline.report.store_source import StoreSource
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration
SPEED = 900.0
CYCLES = 30
EDGEWATCH = [sys.executable, "-m", "pipeline"]

lab = lab_fixture("dualstack", speed=SPEED, scope="module")


def edgewatch(lab: LabStack, *args: str, env: dict[str, str] | None = None) -> str:
    """The console entry point, run inside the lab's namespace."""
    proc = subprocess.run([*lab.exec_prefix, *EDGEWATCH, *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def store(lab: LabStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("dualstack")
    env = {**os.environ, "EDGEWATCH_STORE__DIR": f'"{tmp / "data"}"',
           "EDGEWATCH_STATE__DIR": f'"{tmp / "state"}"'}
    env.pop("ES_URL", None)
    edgewatch(lab, "run", "--config", str(lab.config_path), "--cycles", str(CYCLES), "--quiet",
              env=env)
    yield tmp / "data"


def truth_answers(lab: LabStack, checks: list[dict], rdtype: str) -> list[tuple[float, str]]:
    """(poll time, address) of every address the truth says the polls that were made
    returned, for one record type."""
    out = []
    for (resolver, target), seq in polls_of(
            d for d in checks if d["dns.question.type"] == rdtype).items():
        times = [t for t, _, _ in seq]
        for t, ans in zip(times, lab.truth.observe(resolver, target, times, rdtype), strict=True):
            out += [(t, a) for a in ans.addresses]
    return out


def truth_addresses(lab: LabStack, checks: list[dict], rdtype: str) -> set[str]:
    return {a for _, a in truth_answers(lab, checks, rdtype)}


def truth_decay(lab: LabStack, checks: list[dict], rdtype: str, day0_end: float) -> float:
    """Share of the second day's successful checks that a list of the first day's allowed."""
    ok = [(t, a) for t, a in truth_answers(lab, checks, rdtype)
          if lab.truth.edge_outcome(a) is None]
    allowed = {a for t, a in ok if t < day0_end}
    later = [a for t, a in ok if t >= day0_end]
    return sum(a in allowed for a in later) / len(later)


def test_the_lab_lives_in_its_own_namespace(lab: LabStack) -> None:
    assert lab.netns is not None and netns.exists(lab.netns)
    assert lab.netns_setup_s is not None
    v6 = [a for a in lab.scenario.edge_addresses() if ":" in a]
    assert v6 and all(ipaddress.ip_address(a) in ipaddress.ip_network("fd00::/8") for a in v6)
    # the IPv6 edges exist only inside: the host has none of them
    host = subprocess.run(["ip", "-6", "addr", "show"], capture_output=True, text=True).stdout
    inside = subprocess.run([*lab.exec_prefix, "ip", "-6", "addr", "show", "dev", "lo"],
                            capture_output=True, text=True).stdout
    assert not any(f"{a}/128" in host for a in v6)
    assert all(f"{a}/128" in inside for a in v6)


def test_both_families_equal_the_ground_truth(lab: LabStack, store: Path) -> None:
    checks = list(read_store(store, "checks"))
    runs = list(read_store(store, "runs"))
    figures = {rd: compare_with_truth(lab, checks, runs, rd) for rd in ("A", "AAAA")}
    for rd, f in figures.items():
        assert f["polls"] >= CYCLES * 5 * 2 * 0.6, rd  # overruns may coalesce a few polls
        assert f["failures"] > 0 and f["reused"] > 0, (rd, f)
    tables = {n.prefix: n for n in lab.scenario.networks}
    seen6 = 0
    for doc in checks:
        ip = doc.get("destination.ip")
        if ip is None:
            continue
        addr = ipaddress.ip_address(ip)
        assert addr.version == (6 if doc["dns.question.type"] == "AAAA" else 4)
        assert doc.get("error.type") == lab.truth.edge_outcome(ip), doc
        net = lab.scenario.network_of(ip)
        assert net is not None and tables[net.prefix] is net
        assert doc["destination.as.number"] == net.asn
        assert doc["edgewatch.destination.prefix"] == str(net.prefix)
        bits = 24 if addr.version == 4 else 48
        assert doc["edgewatch.destination.prefix24"] == str(
            ipaddress.ip_network(f"{ip}/{bits}", strict=False))
        dashed = ip.replace(".", "-").replace(":", "-")
        assert doc["destination.domain"] == net.ptr.format(dashed=dashed, ip=ip)  # ip6.arpa PTR
        if addr.version == 6:
            seen6 += 1
            assert doc["destination.port"] == lab.edge_port
    assert seen6 > 0
    # the IPv6 address that moves network: seen in AS64600 first, its successor in AS64601
    moved = {d["destination.ip"]: d["destination.as.number"] for d in checks
             if d.get("edgewatch.resolver.name") == "lab-cloudflare-a"
             and d["dns.question.type"] == "AAAA" and "destination.ip" in d}
    assert moved.get("fd00:60:0:1::10") == 64600 and moved.get("fd00:62::10") == 64601


def _networks(addresses: set[str]) -> tuple[int, int]:
    """(addresses, /24s for IPv4 plus /48s for IPv6)."""
    nets = {ipaddress.ip_network(f"{a}/{24 if ':' not in a else 48}", strict=False)
            for a in addresses}
    return len(addresses), len(nets)


def test_the_report_per_family_and_together(lab: LabStack, store: Path) -> None:
    checks = list(read_store(store, "checks"))
    want = {rd: truth_addresses(lab, checks, rd) for rd in ("A", "AAAA")}
    assert all(want.values())
    # a window opening 20 h before the first poll: its first "day" holds the first 4 h of
    # polls, its second the rest, so the decay of a list built from day 1 is measurable
    first = lab.scenario.start
    origin = datetime.fromtimestamp(first - 20 * 3600, UTC)
    source = StoreSource(store)
    reports = {rd: build_report(source, Filters(start=origin, record_types=(rd,)))
               for rd in ("A", "AAAA")}
    both = build_report(StoreSource(store), Filters(start=origin))
    for rd, rep in reports.items():
        n, nets = _networks(want[rd])
        assert (rep.overall.networks.addresses, rep.overall.networks.prefix24s) == (n, nets), rd
        ok = {a for a in want[rd] if lab.truth.edge_outcome(a) is None}
        assert rep.coverage_by("ip").distinct == len(ok), rd
        (row,) = rep.decay_by("ip").rows
        assert row.shares[0] == pytest.approx(truth_decay(lab, checks, rd, first + 4 * 3600)), rd
        assert row.shares[0] < 1  # rotation: yesterday's list misses some of today's edges
    (row,) = both.decay_by("ip").rows
    together = [(t, a) for rd in ("A", "AAAA") for t, a in truth_answers(lab, checks, rd)
                if lab.truth.edge_outcome(a) is None]
    allowed = {a for t, a in together if t < first + 4 * 3600}
    later = [a for t, a in together if t >= first + 4 * 3600]
    assert row.shares[0] == pytest.approx(sum(a in allowed for a in later) / len(later))
    n, nets = _networks(want["A"] | want["AAAA"])
    assert (both.overall.networks.addresses, both.overall.networks.prefix24s) == (n, nets)
    assert both.overall.documents == sum(r.overall.documents for r in reports.values())
    asns = {lab.scenario.network_of(a).asn for a in want["A"] | want["AAAA"]}
    assert both.overall.networks.asns == len(asns)
    # the /24 granularity is the /48 for IPv6: the verdict's words say which it holds
    evidence = {rd: rep.verdict.details[0] for rd, rep in reports.items()}
    assert f"in {_networks(want['A'])[1]} /24s," in evidence["A"]
    assert f"in {_networks(want['AAAA'])[1]} /48s," in evidence["AAAA"]
    assert f"in {nets} /24s or /48s," in both.verdict.details[0]
    assert "Coverage by /24 or /48:" in "\n".join(both.verdict.details)
    # the command line: --family 6 selects the IPv6 side and says so
    text = edgewatch(lab, "report", "--store", str(store), "--family", "6", "--no-progress")
    assert "IPv6 (AAAA) only" in text
    doc = json.loads(edgewatch(lab, "report", "--store", str(store), "--family", "6",
                               "--format", "json", "--no-progress"))
    assert doc["overall"]["networks"]["addresses"] == len(want["AAAA"])
    assert doc["filters"]["record_types"] == ["AAAA"]


def test_allowlist_exports_hold_both_families(lab: LabStack, store: Path) -> None:
    checks = list(read_store(store, "checks"))
    ok = {a for rd in ("A", "AAAA") for a in truth_addresses(lab, checks, rd)
          if lab.truth.edge_outcome(a) is None}
    al = build_allowlist(StoreSource(store), Filters(), 1.0, "ip")
    cidrs = [line for line in render_allowlist(al, "cidr").splitlines()
             if line and not line.startswith("#")]
    assert {str(ipaddress.ip_network(c).network_address) for c in cidrs} == ok
    assert all(c.endswith("/128") for c in cidrs if ":" in c)
    by48 = build_allowlist(StoreSource(store), Filters(), 1.0, "prefix24")
    want48 = {str(ipaddress.ip_network(f"{a}/{48 if ':' in a else 24}", strict=False))
              for a in ok}
    assert {c for c, _ in by48.entries} == want48
    assert f"{len(want48)} /24s or /48s would have allowed" in by48.header()[0]
    nft = render_allowlist(al, "nft")
    assert "type ipv4_addr" in nft and "type ipv6_addr" in nft
    ipset = render_allowlist(al, "ipset")
    assert "family inet6" in ipset and "family inet " in ipset


def test_elasticsearch_holds_both_families_and_reports_each(lab: LabStack, store: Path,
                                                            es_url: str, tmp_path: Path) -> None:
    """The cluster lives outside the namespace: the store written inside is loaded from
    outside (`edgewatch load`), and the cluster answers exactly what the store does, per
    family too (the --family selection becomes a term filter on dns.question.type)."""
    from elasticsearch import Elasticsearch, helpers

    from pipeline.report.es_source import ElasticsearchSource

    ns = f"ds{os.getpid()}"
    config = tmp_path / "edgewatch.toml"
    config.write_text(lab.config_path.read_text() + f"""
[store]
dir = "{store}"

[state]
dir = "{tmp_path / 'state'}"

[elasticsearch]
url = "{es_url}"
namespace = "{ns}"
spool_dir = "{tmp_path / 'spool'}"
dead_letter_dir = "{tmp_path / 'dead-letter'}"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    for args in (("setup",), ("load", "--quiet")):
        proc = subprocess.run([*EDGEWATCH, *args, "--config", str(config)], capture_output=True,
                              text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    es = Elasticsearch(es_url, request_timeout=30)
    checks_index, runs_index = f"logs-edgewatch.check-{ns}", f"edgewatch-runs-{ns}"
    try:
        es.indices.refresh(index=f"{checks_index},{runs_index}")
        checks = [{k: v for k, v in h["_source"].items()}
                  for h in helpers.scan(es, index=checks_index, query={"query": {"match_all": {}}})]
        assert len(checks) == len(list(read_store(store, "checks")))
        # an IPv6 /48 as a CIDR term query on the ip field
        in48 = sum(1 for d in read_store(store, "checks")
                   if d.get("destination.ip", "").startswith("fd00:60:"))
        got = es.count(index=checks_index, query={"term": {"destination.ip": "fd00:60::/48"}})
        assert got["count"] == in48 > 0
        origin = datetime.fromtimestamp(lab.scenario.start - 20 * 3600, UTC)
        for types in ((), ("A",), ("AAAA",)):
            filters = Filters(start=origin, record_types=types)
            a = build_report(ElasticsearchSource(es, namespace=ns), filters).to_dict()
            b = build_report(StoreSource(store), filters).to_dict()
            for key in ("generated_at", "source"):
                a.pop(key), b.pop(key)
            assert a == b, types
    finally:
        # a real cluster deletes the stream; the devstack node has no _data_stream API (400)
        es.options(ignore_status=(400, 404)).indices.delete_data_stream(name=checks_index)
        es.options(ignore_status=404).indices.delete(index=runs_index)
        es.close()
