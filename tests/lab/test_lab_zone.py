"""The authoritative answers themselves (LabZone, no sockets): what real resolvers rely on."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from lab.plan import AddressPlan
from lab.rotation import addresses_at
from lab.scenario import load_scenario
from lab.zone import LabZone, to_wire_limited

S = load_scenario("quick")
T0 = S.start + 3600 + 900  # 01:15, na rotation slot 1
NA_SRC = "127.53.2.1"


def zone(speed: float = 1.0) -> LabZone:
    return LabZone(S, AddressPlan(), speed, {NA_SRC: "na", "127.53.2.2": "na-alt"})


def ask(z: LabZone, name: str, rdtype: str = "A", src: str = NA_SRC, ecs: str | None = None,
        t: float = T0) -> dns.message.Message:
    options = []
    if ecs:
        a, p = ecs.split("/")
        options.append(dns.edns.ECSOption(a, int(p)))
    q = dns.message.make_query(name, rdtype, use_edns=0, options=options)
    return z.respond(q, src, t)


def test_chain_and_ttls_in_real_time() -> None:
    r = ask(zone(), "acme-v02.api.lab.test")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    owners = [(rr.name.to_text(), rr.rdtype, rr.ttl) for rr in r.answer]
    assert owners == [
        ("acme-v02.api.lab.test.", dns.rdatatype.CNAME, 300),
        ("acme-v02.api.lab.test.edgekey.lab.test.", dns.rdatatype.CNAME, 300),
        ("e1234.a.edge.lab.test.", dns.rdatatype.A, 20),
    ]
    got = {rr.address for rr in r.answer[-1]}
    assert got == addresses_at(S.target("acme-v02.api.lab.test"), "na", T0)


@pytest.mark.parametrize(("speed", "cname_ttl", "a_ttl"), [(10, 30, 2), (60, 5, 0), (3600, 0, 0)])
def test_ttls_are_scaled_by_speed(speed: float, cname_ttl: int, a_ttl: int) -> None:
    r = ask(zone(speed), "acme-v02.api.lab.test")
    assert [rr.ttl for rr in r.answer] == [cname_ttl, cname_ttl, a_ttl]


def test_views_by_source_and_by_ecs_with_scope() -> None:
    z = zone()
    na = ask(z, "e1234.a.edge.lab.test")
    alt = ask(z, "e1234.a.edge.lab.test", src="127.53.2.2")
    eu = ask(z, "e1234.a.edge.lab.test", ecs="198.51.100.0/24")
    sets = [{rr.address for rr in m.answer[0]} for m in (na, alt, eu)]
    assert sets[0] != sets[1] and sets[0] != sets[2]
    assert all(a.startswith("127.61.") for a in sets[2])
    echo = next(o for o in eu.options if isinstance(o, dns.edns.ECSOption))
    assert (echo.address, echo.srclen, echo.scopelen) == ("198.51.100.0", 24, 24)
    other = ask(z, "e1234.a.edge.lab.test", ecs="192.0.2.0/24")
    echo = next(o for o in other.options if isinstance(o, dns.edns.ECSOption))
    assert echo.scopelen == 0
    assert {rr.address for rr in other.answer[0]} == sets[0]


def test_negative_answers_carry_the_soa() -> None:
    z = zone()
    nodata = ask(z, "acme-v02.api.lab.test", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR
    assert [rr.rdtype for rr in nodata.answer] == [dns.rdatatype.CNAME] * 2
    assert nodata.authority[0].rdtype == dns.rdatatype.SOA
    nx = ask(z, "nope.lab.test")
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.authority[0].rdtype == dns.rdatatype.SOA
    ent = ask(z, "edge.lab.test")  # empty non-terminal above e1234.a.edge.lab.test
    assert ent.rcode() == dns.rcode.NOERROR and not ent.answer
    assert ent.authority[0].rdtype == dns.rdatatype.SOA


def test_soa_ns_ptr_and_refused_outside() -> None:
    z = zone()
    assert ask(z, "lab.test", "SOA").answer[0].rdtype == dns.rdatatype.SOA
    assert ask(z, "lab.test", "NS").answer[0][0].target.to_text() == "ns1.lab.test."
    ptr = ask(z, "10.0.61.127.in-addr.arpa", "PTR")
    assert ptr.answer[0][0].target.to_text() == "a127-61-0-10.deploy.eu.edge.lab.test."
    assert ask(z, "example.com").rcode() == dns.rcode.REFUSED


def test_udp_truncation_and_tcp_full_answer() -> None:
    z = zone()
    q = dns.message.make_query("big.lab.test", "TXT")  # no EDNS: 512 bytes
    r = z.respond(q, NA_SRC, T0)
    udp = dns.message.from_wire(to_wire_limited(q, r, udp=True))
    assert udp.flags & dns.flags.TC and not udp.answer
    r = z.respond(q, NA_SRC, T0)
    tcp = dns.message.from_wire(to_wire_limited(q, r, udp=False))
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 16
    small = dns.message.make_query("acme-v02.api.lab.test", "A")
    r = z.respond(small, NA_SRC, T0)
    assert not dns.message.from_wire(to_wire_limited(small, r, udp=True)).flags & dns.flags.TC
