"""The dual-stack scenario without sockets: the loader's IPv6 rules, AAAA and ip6.arpa answers,
the iptoasn rows and the truth per record type."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from lab.netinfo import iptoasn_lines, ptr_map
from lab.plan import AddressPlan
from lab.rotation import addresses_at
from lab.scenario import SCENARIO_DIR, ScenarioError, load_scenario, of_type
from lab.truth import GroundTruth, poll_times
from lab.zone import LabZone

S = load_scenario("dualstack")
DUAL = (SCENARIO_DIR / "dualstack.toml").read_text()
NA_SRC, ALT_SRC = "127.53.2.1", "127.53.2.2"
ACME = "acme-v02.api.lab.test"


def zone() -> LabZone:
    return LabZone(S, AddressPlan(), 1.0, {NA_SRC: "na", ALT_SRC: "na-alt"})


def answer(name: str, rdtype: str, src: str = NA_SRC, t: float = S.start + 900
           ) -> dns.message.Message:
    return zone().respond(dns.message.make_query(name, rdtype), src, t)


def test_a_and_aaaa_carry_one_family_each() -> None:
    for rdtype, version in (("A", 4), ("AAAA", 6)):
        r = answer(ACME, rdtype)
        assert r.rcode() == dns.rcode.NOERROR
        final = r.answer[-1]
        assert final.rdtype == dns.rdatatype.from_text(rdtype)
        got = {x.to_text() for x in final}
        want = of_type(addresses_at(S.target(ACME), "na", S.start + 900), rdtype)
        assert got == set(want) and {ipaddress.ip_address(a).version for a in got} == {version}


def test_quick_still_answers_aaaa_with_nodata() -> None:
    quick = load_scenario("quick")
    z = LabZone(quick, AddressPlan(), 1.0, {NA_SRC: "na"})
    r = z.respond(dns.message.make_query(ACME, "AAAA"), NA_SRC, quick.start + 900)
    assert r.rcode() == dns.rcode.NOERROR and r.answer[-1].rdtype == dns.rdatatype.CNAME
    assert r.authority and r.authority[0].rdtype == dns.rdatatype.SOA
    assert quick.record_types(ACME) == ("A",) and not quick.has_ipv6


def test_ip6_arpa_ptr_for_every_ipv6_edge() -> None:
    v6 = [a for a in S.edge_addresses() if ":" in a]
    assert v6
    ptrs = ptr_map(S)
    for a in v6:
        rev = ipaddress.ip_address(a).reverse_pointer
        assert rev.endswith(".d.f.ip6.arpa")
        r = answer(rev, "PTR")
        assert r.rcode() == dns.rcode.NOERROR
        assert r.answer[0][0].to_text() == ptrs[rev] + "."
    # an fd00::/8 name nobody was given: NXDOMAIN with the reverse zone's SOA
    r = answer(ipaddress.ip_address("fd00:99::1").reverse_pointer, "PTR")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.authority[0].name.to_text() == "d.f.ip6.arpa."


def test_iptoasn_rows_cover_the_ipv6_networks() -> None:
    rows = [line.split("\t") for line in iptoasn_lines(S)]
    v6 = [r for r in rows if ":" in r[0]]
    assert [(r[0], r[2]) for r in v6] == [("fd00:60::", "64600"), ("fd00:61::", "64700"),
                                         ("fd00:62::", "64601")]
    for r in v6:
        net = ipaddress.ip_network(f"{r[0]}/48")
        assert ipaddress.ip_address(r[1]) == net.broadcast_address


def test_the_ipv6_mover_changes_network_and_the_truth_says_so() -> None:
    truth = GroundTruth(S, speed=900)
    times = poll_times(S.start, S.start + 6 * 3600, "15m")
    runs = truth.runs("lab-cloudflare-a", ACME, times, "AAAA")
    by = {(r.address, r.seq): r for r in runs}
    assert by[("fd00:60:0:1::10", 1)].end is not None  # gone when it moved ...
    assert by[("fd00:62::10", 1)].start == by[("fd00:60:0:1::10", 1)].end  # ... to AS64601
    assert S.network_of("fd00:62::10").asn == 64601
    assert ("fd00:60:0:1::11", 2) in by  # withdrawn for two hours and back: run reuse
    a_runs = truth.runs("lab-cloudflare-a", ACME, times, "A")
    assert all(":" not in r.address for r in a_runs)


@pytest.mark.parametrize(("old", "new", "key"), [
    ('prefix = "fd00:62::/48"', 'prefix = "2001:db8::/48"', "networks[5].prefix"),
    ('"fd00:60:0:1::11"]', '"2001:db8::11"]', "targets[0].rules[4].addresses[0]"),
    ('na-hourly6 = ["fd00:60::10-fd00:60::15"]', 'na-hourly6 = ["fd00:60::10-127.60.0.15"]',
     "pools.na-hourly6[0]"),
])
def test_ipv6_outside_unique_local_space_is_refused(tmp_path: Path, old: str, new: str,
                                                    key: str) -> None:
    assert old in DUAL
    path = tmp_path / "s.toml"
    path.write_text(DUAL.replace(old, new, 1))
    with pytest.raises(ScenarioError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_scenario(path)


def test_an_empty_aaaa_answer_is_rejected(tmp_path: Path) -> None:
    text = DUAL.replace('''  [[targets.rules]]
  kind = "rotate"
  views = ["eu"]
  pool = "eu-rot6"''', '''  [[targets.rules]]
  kind = "rotate"
  views = ["na"]
  pool = "eu-rot6"''', 1)
    assert text != DUAL
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=r"view 'eu' gets an empty answer \(AAAA\)"):
        load_scenario(path)
