"""Fuzzing the answer path: random and mutated wire data never raise, always classify.

The answer path is factored into pure functions (``classify_wire`` / ``classify_message`` for
forward lookups, ``ptr_result`` for PTR, ``_udp_verdict`` for the datagram filter), so
hypothesis can feed them thousands of hostile messages without a socket.
"""

from __future__ import annotations

import ipaddress
import struct

import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
from faults_dns_peers import RR, Request, a, aaaa, name_wire, response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.probe.dns_answer import MAX_CHAIN, Answer, classify_wire
from pipeline.probe.dns_exchange import _udp_verdict
from pipeline.probe.rdns import RdnsResult, ptr_result

QNAME = "api.faults.test"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = [QNAME + ".", "c1.faults.test.", "c2.faults.test.", "other.faults.test.", "."]
TYPES = ["A", "A", "AAAA", "AAAA", "CNAME", "CNAME", "TXT", "PTR", 99, 65535, 0]
CLASSES = ["IN", "IN", "IN", "CH", "HS", "NONE", "ANY", 7]


def _request(rtype: str) -> Request:
    q = dns.message.make_query(QNAME, rtype)
    return Request(q.to_wire(), q, "udp")


@st.composite
def records(draw: st.DrawFn) -> RR:
    rtype = draw(st.sampled_from(TYPES))
    name = draw(st.sampled_from(NAMES))
    rclass = draw(st.sampled_from(CLASSES))
    well_formed = draw(st.integers(0, 19)) < 19  # mostly parsable, so the classifier is reached
    if rtype == "A" and rclass == "CH" and well_formed:  # CH A: a domain and a 16-bit address
        rdata = name_wire(draw(st.sampled_from(NAMES))) + draw(st.binary(min_size=2, max_size=2))
    elif rtype == "A" and well_formed:
        rdata = a(str(ipaddress.IPv4Address(draw(st.integers(0, 2**32 - 1)))))
    elif rtype == "AAAA" and well_formed:
        rdata = aaaa(str(ipaddress.IPv6Address(draw(st.integers(0, 2**128 - 1)))))
    elif rtype in ("CNAME", "PTR") and well_formed:
        rdata = name_wire(draw(st.sampled_from(NAMES)))
    elif rtype == "TXT" and well_formed:
        text = draw(st.binary(max_size=20))
        rdata = bytes([len(text)]) + text
    else:
        rdata = draw(st.binary(max_size=24))
    return RR(name, rtype, rdata, ttl=draw(st.integers(0, 2**32 - 1)), rclass=rclass)


@st.composite
def answers(draw: st.DrawFn) -> tuple[bytes, str]:
    """A structurally plausible answer, then (sometimes) mutated byte by byte."""
    rtype = draw(st.sampled_from(["A", "AAAA"]))
    req = _request(rtype)
    rrs = draw(st.lists(records(), max_size=10))
    if draw(st.booleans()):  # an address at the question name, somewhere among the rest
        addr = "192.0.2.1" if rtype == "A" else "2001:db8::1"
        rrs.insert(draw(st.integers(0, len(rrs))),
                   RR(QNAME + ".", rtype, a(addr) if rtype == "A" else aaaa(addr)))
    wire = bytearray(response(req, rrs,
                              rcode=draw(st.sampled_from([0, 0, 0, 2, 3, 5, 9, 15])),
                              tc=draw(st.booleans())))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 4]))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw(st.integers(0, max(0, len(wire) - 1)))
        if op == "flip" and wire:
            wire[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del wire[at:at + draw(st.integers(1, 8))]
        else:
            wire[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(wire), rtype


def _check(answer: Answer, rtype: str) -> None:
    assert isinstance(answer, Answer)
    assert answer.error_type is None or answer.error_type.startswith("dns.")
    if answer.error_type is None:
        assert answer.addresses, "success without addresses"
    else:
        assert answer.error_message
    version = 4 if rtype == "A" else 6
    for addr in answer.addresses:
        assert isinstance(addr.address, str)
        assert ipaddress.ip_address(addr.address).version == version
        assert isinstance(addr.ttl, int) and 0 <= addr.ttl < 2**31
    assert all(isinstance(n, str) for n in answer.cname_chain)
    assert len(answer.cname_chain) <= MAX_CHAIN + 1


@FUZZ
@given(answers())
def test_mutated_answers_always_classify(case: tuple[bytes, str]) -> None:
    wire, rtype = case
    _check(classify_wire(wire, QNAME, rtype), rtype)


@FUZZ
@given(st.binary(max_size=600), st.sampled_from(["A", "AAAA"]))
def test_random_bytes_always_classify(wire: bytes, rtype: str) -> None:
    _check(classify_wire(wire, QNAME, rtype), rtype)


@FUZZ
@given(answers())
def test_the_datagram_filter_never_raises(case: tuple[bytes, str]) -> None:
    wire, rtype = case
    query = dns.message.make_query(QNAME, rtype)
    wire = struct.pack("!H", query.id) + wire[2:]  # mostly our id, so parsing is reached
    verdict, message, reason = _udp_verdict(query, wire)
    assert verdict in ("ok", "truncated", "ignore")
    assert (message is not None) == (verdict == "ok") and (verdict != "ignore" or reason)
    if message is not None:
        assert query.is_response(message)


@FUZZ
@given(st.lists(records(), max_size=12), st.sampled_from([0, 0, 2, 3]))
def test_ptr_answers_always_classify(rrs: list[RR], rcode: int) -> None:
    q = dns.message.make_query("10.2.0.192.in-addr.arpa.", "PTR")
    req = Request(q.to_wire(), q, "udp")
    try:
        message = dns.message.from_wire(response(req, rrs, rcode=rcode))
    except Exception:
        return  # unparsable wire never reaches ptr_result: the exchange sets it aside
    res = ptr_result("192.0.2.10", message, dns.name.from_text("10.2.0.192.in-addr.arpa."))
    assert isinstance(res, RdnsResult)
    assert (res.hostname is None) != (res.error_type is None)
    assert res.error_type is None or res.error_type.startswith("dns.")
    if res.hostname is not None:  # only a class-IN PTR can name the address
        assert any(r.rdclass == dns.rdataclass.IN and r.rdtype == dns.rdatatype.PTR
                   for r in message.answer)
