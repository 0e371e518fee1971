"""probe_dns against answers a hostile resolver can send: every one gives a classified result."""

from __future__ import annotations

import asyncio
import ipaddress
import struct

from faults_dns_peers import (
    RR,
    Reply,
    Request,
    a,
    aaaa,
    addresses_reply,
    dns_peer,
    header,
    name_wire,
    question,
    response,
)

from pipeline.config import Resolver
from pipeline.probe.dns import DnsResult, probe_dns

QNAME = "api.faults.test"


def ask(port: int, qname: str = QNAME, rtype: str = "A", timeout: float = 0.5,
        transport: str = "udp") -> DnsResult:
    resolver = Resolver("hostile", "127.0.0.1", port, transport=transport)
    return asyncio.run(probe_dns(resolver, qname, rtype, timeout))


def one(wire_of: object) -> object:
    """A handler sending one reply built by ``wire_of(request)``."""
    return lambda req: [Reply(wire_of(req))]  # type: ignore[operator]


def test_class_ch_a_record_never_reaches_the_addresses() -> None:
    ch = name_wire("ch.faults.test.") + struct.pack("!H", 0x1234)  # CH A: domain + 16-bit address
    with dns_peer(one(lambda r: response(r, [RR(r.qname, "A", ch, rclass="CH")]))) as peer:
        res = ask(peer.port)
    assert (res.error_type, res.addresses, res.rcode) == ("dns.unexpected_class", (), "NOERROR")
    assert "CH" in (res.error_message or "")


def test_class_hs_a_record_generic_rdata_is_unexpected_class() -> None:
    with dns_peer(one(lambda r: response(r, [RR(r.qname, "A", a("192.0.2.7"),
                                                   rclass="HS")]))) as peer:
        res = ask(peer.port)
    assert res.error_type == "dns.unexpected_class" and res.addresses == ()


def test_in_records_are_kept_and_other_classes_beside_them_dropped() -> None:
    def handle(r: Request) -> list[Reply]:
        return [Reply(response(r, [RR(r.qname, "A", a("192.0.2.9"), rclass="HS"),
                                   RR(r.qname, "A", a("192.0.2.1"))]))]
    with dns_peer(handle) as peer:
        res = ask(peer.port)
    assert res.ok and res.address_set == {"192.0.2.1"}


def test_cname_of_another_class_is_not_followed() -> None:
    def handle(r: Request) -> list[Reply]:
        return [Reply(response(r, [RR(r.qname, "CNAME", name_wire("x.faults.test."),
                                      rclass="CH"),
                                   RR("x.faults.test.", "A", a("192.0.2.1"))]))]
    with dns_peer(handle) as peer:
        res = ask(peer.port)
    assert res.cname_chain == (QNAME,) and res.error_type == "dns.unexpected_class"


def _chain(r: Request, names: list[str], final: bytes | None) -> bytes:
    rrs = [RR(names[i], "CNAME", name_wire(names[i + 1])) for i in range(len(names) - 1)]
    if final is not None:
        rrs.append(RR(names[-1], "A", final))
    return response(r, rrs)


def test_cname_loop_has_its_own_type() -> None:
    names = [QNAME + ".", "l1.faults.test.", "l2.faults.test.", QNAME + "."]
    with dns_peer(one(lambda r: _chain(r, names, None))) as peer:
        res = ask(peer.port)
    assert res.error_type == "dns.cname_loop" and res.rcode == "NOERROR"
    assert res.cname_chain == (QNAME, "l1.faults.test", "l2.faults.test")


def test_thirty_cnames_ending_in_an_address_are_followed() -> None:
    names = [QNAME + "."] + [f"c{i}.faults.test." for i in range(30)]
    with dns_peer(one(lambda r: _chain(r, names, a("192.0.2.30")))) as peer:
        res = ask(peer.port)
    assert res.ok, res
    assert res.address_set == {"192.0.2.30"} and len(res.cname_chain) == 31
    assert res.cname_chain[-1] == "c29.faults.test"


def test_chain_beyond_the_bound_has_its_own_type() -> None:
    from pipeline.probe.dns_answer import MAX_CHAIN

    names = [QNAME + "."] + [f"c{i}.faults.test." for i in range(MAX_CHAIN + 5)]
    with dns_peer(one(lambda r: _chain(r, names, a("192.0.2.99"))), tcp=None) as peer:
        res = ask(peer.port, timeout=1.0)
    assert res.error_type == "dns.cname_chain_too_long" and not res.ok
    assert len(res.cname_chain) == MAX_CHAIN + 1


def test_garbage_bytes_with_our_id_are_malformed_within_the_timeout() -> None:
    with dns_peer(one(lambda r: struct.pack("!H", r.id) + b"\x81\x80" + b"\xff" * 40)) as peer:
        res = ask(peer.port, timeout=0.3)
    assert res.error_type == "dns.malformed" and "unparsable" in (res.error_message or "")


def test_empty_datagram_is_malformed_not_silence() -> None:
    with dns_peer(one(lambda r: b"")) as peer:
        res = ask(peer.port, timeout=0.3)
    assert res.error_type == "dns.malformed" and "0-byte" in (res.error_message or "")


def test_message_cut_inside_the_answer_is_malformed() -> None:
    with dns_peer(one(lambda r: response(r, [RR(r.qname, "A", a("192.0.2.1"))])[:-3])) as peer:
        res = ask(peer.port, timeout=0.3)
    assert res.error_type == "dns.malformed"


def test_compression_pointer_loop_is_malformed() -> None:
    def loop(r: Request) -> bytes:
        # the answer's owner name is a pointer to itself (offset of the answer section)
        q = question(r.qname, r.qtype)
        at = 12 + len(q)
        ptr = struct.pack("!H", 0xC000 | at)
        return (header(r.id, an=1) + q + ptr + struct.pack("!HHIH", 1, 1, 60, 4)
                + a("192.0.2.1"))
    with dns_peer(one(loop)) as peer:
        res = ask(peer.port, timeout=0.3)
    assert res.error_type == "dns.malformed"


def test_answer_to_another_question_is_not_taken() -> None:
    def handle(r: Request) -> list[Reply]:
        return [Reply(response(r, [RR("evil.faults.test.", "A", a("192.0.2.66"))],
                               qname="evil.faults.test."))]
    with dns_peer(handle) as peer:
        res = ask(peer.port, timeout=0.3)
    assert res.error_type == "dns.malformed" and res.addresses == ()
    assert "another question" in (res.error_message or "")


def test_answer_for_another_qtype_is_not_taken() -> None:
    def handle(r: Request) -> list[Reply]:
        return [Reply(response(r, [RR(r.qname, "AAAA", aaaa("2001:db8::1"))], qtype=28))]
    with dns_peer(handle) as peer:
        res = ask(peer.port, timeout=0.3)
    assert res.error_type == "dns.malformed" and res.addresses == ()


def test_aaaa_records_in_an_a_answer_are_not_addresses() -> None:
    with dns_peer(one(lambda r: response(r, [RR(r.qname, "AAAA", aaaa("2001:db8::1"))]))) as p:
        res = ask(p.port)
    assert res.error_type == "dns.nodata" and res.addresses == ()


def test_rdata_of_the_wrong_length_is_malformed() -> None:
    with dns_peer(one(lambda r: response(r, [RR(r.qname, "A", b"\x01\x02\x03")]))) as peer:
        res = ask(peer.port, timeout=0.3)
    assert res.error_type == "dns.malformed"


def test_tc_bit_without_a_tcp_listener_is_a_network_error() -> None:
    with dns_peer(one(lambda r: response(r, tc=True)), tcp=None) as peer:
        res = ask(peer.port, timeout=1.0)
    assert res.error_type == "dns.network"
    assert "truncated" in (res.error_message or "")


def test_254_addresses_are_returned_intact() -> None:
    addrs = [f"198.51.100.{i}" for i in range(1, 255)]
    with dns_peer(addresses_reply(*addrs)) as peer:
        res = ask(peer.port)
    assert res.ok and [x.address for x in res.addresses] == addrs


def test_ttls_with_the_top_bit_set_read_as_zero() -> None:
    # RFC 2181 §8 (applied by dnspython's parser): never a negative or 2^31+ TTL in a document
    for ttl, want in ((2**31 - 1, 2**31 - 1), (2**31, 0), (2**32 - 1, 0)):
        with dns_peer(addresses_reply("192.0.2.1", ttl=ttl)) as peer:
            res = ask(peer.port)
        assert res.ok and res.addresses[0].ttl == want


def test_duplicate_records_give_each_address_once() -> None:
    def handle(r: Request) -> list[Reply]:
        rrs = [RR(r.qname, "A", a("192.0.2.1")), RR(r.qname, "A", a("192.0.2.2")),
               RR(r.qname, "A", a("192.0.2.1"), ttl=5)]
        return [Reply(response(r, rrs))]
    with dns_peer(handle) as peer:
        res = ask(peer.port)
    assert res.ok and [x.address for x in res.addresses] == ["192.0.2.1", "192.0.2.2"]


def test_aaaa_answer_gives_valid_v6_strings() -> None:
    with dns_peer(addresses_reply("2001:db8::1", "2001:db8:0:0:0:0:0:2")) as peer:
        res = ask(peer.port, rtype="AAAA")
    assert res.ok
    assert all(ipaddress.ip_address(x.address).version == 6 for x in res.addresses)


def test_names_that_break_the_dns_rules_are_classified_without_traffic() -> None:
    with dns_peer(addresses_reply("192.0.2.1")) as peer:
        for name in ("a" * 64 + ".faults.test", ".".join(["abcdefgh"] * 40), "a..b", "",
                     "."):
            res = ask(peer.port, qname=name)
            assert res.error_type == "dns.bad_name", (name, res)
        assert peer.requests == []


def test_servfail_and_nxdomain_keep_their_types() -> None:
    for rcode, kind in ((2, "dns.servfail"), (3, "dns.nxdomain"), (5, "dns.refused")):
        with dns_peer(one(lambda r, rc=rcode: response(r, rcode=rc))) as peer:
            res = ask(peer.port)
        assert res.error_type == kind


def test_a_reflected_query_is_not_an_answer() -> None:
    with dns_peer(one(lambda r: r.wire)) as peer:  # the query itself, QR bit clear
        res = ask(peer.port, timeout=0.3)
    assert res.error_type == "dns.malformed" and "QR bit" in (res.error_message or "")


def test_owner_names_match_without_regard_to_case() -> None:
    with dns_peer(one(lambda r: response(r, [RR("API.Faults.TEST.", "A", a("192.0.2.3"))]))) as p:
        res = ask(p.port)
    assert res.ok and res.address_set == {"192.0.2.3"}


def test_a_64_kilobyte_answer_of_2000_addresses_is_parsed_within_the_timeout() -> None:
    addrs = [f"198.51.{i // 250}.{i % 250 + 1}" for i in range(2000)]
    with dns_peer(addresses_reply(*addrs)) as peer:
        res = ask(peer.port, timeout=2.0)
    assert res.ok and len(res.addresses) == 2000


def test_a_broken_ecs_option_in_the_opt_record_is_classified() -> None:
    def handle(r: Request) -> list[Reply]:
        body = response(r, [RR(r.qname, "A", a("192.0.2.1"))])
        hdr = bytearray(body[:12])
        hdr[11] = 1  # ARCOUNT = 1
        ecs = struct.pack("!HHHBB", 8, 5, 99, 200, 0) + b"\x01"  # family 99, prefix 200
        opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(ecs)) + ecs
        return [Reply(bytes(hdr) + body[12:] + opt)]
    with dns_peer(handle) as peer:
        res = ask(peer.port, timeout=0.3)
    # dnspython refuses the whole message: the answer is classified, not half-trusted
    assert res.error_type == "dns.malformed" and "family" in (res.error_message or "")


def test_the_answer_section_is_carried_whole_and_in_order() -> None:
    """ECS dns.answers: every record as sent, other classes and CNAMEs included, over the wire."""
    def handle(r: Request) -> list[Reply]:
        return [Reply(response(r, [RR("x.faults.test.", "A", a("192.0.2.2"), ttl=30),
                                   RR(r.qname, "CNAME", name_wire("x.faults.test."), ttl=300),
                                   RR(r.qname, "A", a("192.0.2.9"), rclass="HS", ttl=5),
                                   RR("x.faults.test.", "A", a("192.0.2.1"), ttl=30)]))]
    with dns_peer(handle) as peer:
        res = ask(peer.port)
    assert res.ok and [x.address for x in res.addresses] == ["192.0.2.2", "192.0.2.1"]
    # dnspython merges the two x.faults.test A records into one RRset, at its first position
    assert res.answers == (
        ("x.faults.test", "A", "IN", 30, "192.0.2.2"),
        ("x.faults.test", "A", "IN", 30, "192.0.2.1"),
        (QNAME, "CNAME", "IN", 300, "x.faults.test"),
        (QNAME, "A", "HS", 5, "\\# 4 c0000209"),  # class HS: generic rdata (RFC 3597)
    )
