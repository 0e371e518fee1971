"""The fast answer reader (``pipeline.probe.dns_read``) against ``dns.message.from_wire``.

``from_wire`` is the reference: for every generated message (CNAME chains that may loop or
branch, A/AAAA with repeated addresses and differing TTLs, records of other types and classes,
rcodes with the EDNS extension, ECS, TC, compression pointers on or off) and for mutated bytes
(flipped bits, cuts, insertions, stray compression pointers, wrong counts), either both parse
and the classification of the check is the same, field for field, or ``from_wire`` raises and
the fast reader calls the message malformed. The datagram filter built on it gives the same
verdict and the same reason as the ``from_wire``/``is_response`` filter, id and question
checks included.
"""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from pipeline.probe.dns_answer import classify_message
from pipeline.probe.dns_exchange import _Fast, _Reference, _verdict
from pipeline.probe.dns_read import Unread, WireMessage, read_message
from pipeline.probe.dns_wire import query_wire

QNAME = "api.example.test"
PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

OWNERS = ["api.example.test.", "API.Example.TEST.", "c1.edge.test.", "c2.edge.test.",
          "e1.edge.test.", "E1.EDGE.test.", "."]
V4 = [bytes([127, 0, 0, n]) for n in (5, 6, 7)] + [bytes([192, 0, 2, 1])]
V6 = [bytes(15) + b"\x01", bytes.fromhex("20010db8000000000000000000000001"),
      bytes.fromhex("00000000000000000000ffff7f000005")]
# (type, class) of the records drawn; the first five are what a check reads
KINDS = [(1, 1)] * 4 + [(28, 1)] * 3 + [(5, 1)] * 4 + [
    (5, 3), (1, 3), (16, 1), (15, 1), (2, 1), (6, 1), (99, 1), (12, 1), (46, 1), (1, 255),
    (28, 254), (65280, 1)]


class Writer:
    """Message bytes with optional name compression (pointers to earlier suffixes)."""

    def __init__(self, compress: bool) -> None:
        self.out = bytearray()
        self.compress = compress
        self.seen: dict[tuple[bytes, ...], int] = {}

    def name(self, text: str) -> None:
        labels = [x.encode() for x in text.rstrip(".").split(".") if x]
        for i in range(len(labels)):
            suffix = tuple(x.lower() for x in labels[i:])
            if self.compress and suffix in self.seen:
                self.out += struct.pack("!H", 0xC000 | self.seen[suffix])
                return
            if len(self.out) < 0x3FFF:
                self.seen[suffix] = len(self.out)
            self.out += bytes([len(labels[i])]) + labels[i]
        self.out += b"\x00"

    def rr(self, owner: str, rtype: int, rclass: int, ttl: int, rdata: bytes | str) -> None:
        self.name(owner)
        start = len(self.out) + 8
        self.out += struct.pack("!HHIH", rtype, rclass, ttl, 0)
        if isinstance(rdata, str):
            self.name(rdata)
        else:
            self.out += rdata
        struct.pack_into("!H", self.out, start, len(self.out) - start - 2)


@st.composite
def rdata(draw: st.DrawFn, rtype: int, rclass: int) -> bytes | str:
    if draw(st.integers(0, 49)) == 0:
        return draw(st.binary(max_size=20))  # anything at all
    if rtype == 1 and rclass == 1:
        return draw(st.sampled_from(V4))
    if rtype == 28 and rclass == 1:
        return draw(st.sampled_from(V6))
    if rtype in (5, 2, 12):
        return draw(st.sampled_from(OWNERS))
    if rtype == 1 and rclass == 3:  # CH A: a domain and a 16-bit address
        return b"\x02ch\x04edge\x04test\x00\x00\x05"
    if rtype in (16, 99):
        text = draw(st.binary(max_size=12))
        return bytes([len(text)]) + text
    if rtype == 15:
        return struct.pack("!H", draw(st.integers(0, 20))) + b"\x02mx\x04edge\x04test\x00"
    if rtype == 6:
        return (b"\x02ns\x04edge\x04test\x00\x05admin\x04edge\x04test\x00"
                + struct.pack("!IIIII", 1, 2, 3, 4, 5))
    return draw(st.binary(max_size=20))


@st.composite
def records(draw: st.DrawFn) -> tuple[str, int, int, int, bytes | str]:
    rtype, rclass = draw(st.sampled_from(KINDS))
    ttl = draw(st.sampled_from([0, 1, 20, 60, 300, 2**31 - 1, 2**31, 2**32 - 1]))
    return draw(st.sampled_from(OWNERS)), rtype, rclass, ttl, draw(rdata(rtype, rclass))


@st.composite
def opt_record(draw: st.DrawFn) -> tuple[str, int, int, int, bytes]:
    """An OPT record: payload, extended rcode and flags (DO) in its TTL, maybe ECS."""
    options = b""
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):  # ECS: family, source prefix, scope prefix, address bytes
            family, src, addr = draw(st.sampled_from(
                [(1, 24, b"\x7f\x00\x00"), (1, 0, b""), (1, 32, bytes(4)), (2, 56, bytes(7)),
                 (1, 8, b"\x7f"), (1, 33, bytes(5)), (3, 8, b"\x01"), (1, 24, b"\x7f")]))
            scope = draw(st.sampled_from([0, 16, 24, 24, 200]))
            body = struct.pack("!HBB", family, src, scope) + addr
            options += struct.pack("!HH", 8, len(body)) + body
        else:
            body = draw(st.binary(max_size=6))
            options += struct.pack("!HH", draw(st.sampled_from([3, 10, 15, 65001])),
                                   len(body)) + body
    ttl = (draw(st.integers(0, 255)) << 24) | (draw(st.sampled_from([0, 0x8000])))
    owner = "." if draw(st.integers(0, 9)) else "e1.edge.test."
    return owner, 41, draw(st.sampled_from([512, 1232, 4096])), ttl, options


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, int]:
    """A response (mostly to our question), rendered with or without compression, then
    sometimes mutated; returns the bytes and the id the query was sent with."""
    qid = draw(st.integers(0, 0xFFFF))
    opcode = draw(st.sampled_from([0] * 12 + [1, 2, 4, 5]))
    rcode = draw(st.sampled_from([0] * 6 + [1, 2, 3, 4, 5, 9, 15]))
    qr = 0x8000 if draw(st.integers(0, 19)) else 0
    flags = qr | (opcode << 11) | rcode | draw(st.sampled_from([0x0100, 0x0180, 0x0580, 0x0380]))
    flags |= 0x0200 if draw(st.integers(0, 9)) == 0 else 0  # TC
    if draw(st.integers(0, 4)):
        questions = [(QNAME + ".", draw(st.sampled_from([1, 28])), 1)]
    else:  # none, two, or another question
        questions = draw(st.lists(st.sampled_from(
            [(QNAME + ".", 1, 1), ("API.example.TEST.", 1, 1), ("c1.edge.test.", 1, 1),
             (QNAME + ".", 28, 1), (QNAME + ".", 1, 3)]), max_size=2))
    answer = draw(st.lists(records(), max_size=9))
    authority = draw(st.lists(records(), max_size=2))
    additional = draw(st.lists(records(), max_size=2))
    for _ in range(draw(st.sampled_from([0] * 3 + [1] * 8 + [2]))):
        additional.insert(draw(st.integers(0, len(additional))), draw(opt_record()))
    w = Writer(compress=draw(st.booleans()))
    w.out += struct.pack("!HHHHHH", qid, flags, len(questions), len(answer), len(authority),
                         len(additional))
    for name, rtype, rclass in questions:
        w.name(name)
        w.out += struct.pack("!HH", rtype, rclass)
    for rr in answer + authority + additional:
        w.rr(*rr)
    return bytes(mutate(draw, w.out)), qid


def mutate(draw: st.DrawFn, wire: bytearray) -> bytearray:
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 0, 1, 2, 3]))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "pointer", "count"]))
        at = draw(st.integers(0, max(0, len(wire) - 1)))
        if op == "flip" and wire:
            wire[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del wire[at:at + draw(st.integers(1, 6))]
        elif op == "insert":
            wire[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "pointer" and len(wire) > at + 1:
            struct.pack_into("!H", wire, at, 0xC000 | draw(st.integers(0, len(wire))))
        elif op == "count" and len(wire) >= 12:
            struct.pack_into("!H", wire, 2 * draw(st.integers(2, 5)), draw(st.integers(0, 5)))
    return wire


def _parse(wire: bytes) -> tuple[dns.message.Message | None, WireMessage | None, Unread | None]:
    try:
        ref = dns.message.from_wire(wire)
    except Exception:
        ref = None
    try:
        return ref, read_message(wire), None
    except Unread as exc:
        return ref, None, exc


def _lab_answer() -> bytes:
    """An answer shaped like unbound's in the lab: two CNAMEs, three A, OPT, compressed."""
    query = dns.message.make_query(QNAME, "A", use_edns=0, payload=1232)
    response = dns.message.make_response(query)
    response.id = 0xABCD
    for owner, rtype, ttl, data in [(QNAME, "CNAME", 3600, "c1.edge.test."),
                                    ("c1.edge.test", "CNAME", 3600, "e1.edge.test."),
                                    ("e1.edge.test", "A", 20, "127.0.0.5"),
                                    ("e1.edge.test", "A", 20, "127.0.0.6"),
                                    ("e1.edge.test", "A", 20, "127.0.0.7")]:
        response.answer.append(dns.rrset.from_text(owner + ".", ttl, "IN", rtype, data))
    return response.to_wire()


LAB_ANSWER = _lab_answer()


@PROPERTY
@given(messages(), st.sampled_from(["A", "AAAA"]))
@example((LAB_ANSWER, 0xABCD), "A")
def test_the_fast_reader_agrees_with_from_wire(case: tuple[bytes, int], rtype: str) -> None:
    wire = case[0]
    ref, fast, unread = _parse(wire)
    if ref is None:  # from_wire raises: the fast reader must not vouch for the message
        event("from_wire raises")
        assert fast is None and unread is not None
        return
    if fast is None:  # left to from_wire: never called malformed when from_wire reads it
        event("left to from_wire")
        assert unread is not None and not unread.malformed
        assert ref.opcode() != 0
        return
    event(f"both read it, {len(ref.answer)} answer RRsets")
    assert (fast.id, fast.flags, fast.ednsflags) == (ref.id, int(ref.flags), ref.ednsflags)
    assert fast.rcode() == ref.rcode() and fast.options == ref.options
    assert classify_message(fast, QNAME, rtype) == classify_message(ref, QNAME, rtype)
    query = query_wire(QNAME, rtype, None)
    asked = dns.message.from_wire(query.with_id(fast.id))
    if ref.flags & dns.flags.QR:
        assert asked.is_response(ref) == fast.answers(query.qname, query.rdtype, query.rdclass)


@PROPERTY
@given(messages(), st.sampled_from(["A", "AAAA"]), st.integers(0, 9))
def test_the_datagram_filter_gives_the_reference_verdict(case: tuple[bytes, int], rtype: str,
                                                         other_id: int) -> None:
    wire, qid = case
    if other_id == 0:
        qid ^= 0x0101  # now and then a reply with another id
    query = query_wire(QNAME, rtype, None)
    fast = _verdict(_Fast(query, qid), wire)
    reference = _verdict(_Reference(dns.message.from_wire(query.with_id(qid))), wire)
    assert fast[0] == reference[0] and fast[2] == reference[2]
    if fast[1] is not None:
        assert reference[1] is not None
        assert classify_message(fast[1], QNAME, rtype) == classify_message(reference[1],
                                                                           QNAME, rtype)


def test_the_lab_answer_takes_the_fast_path() -> None:
    """The common case must not fall back: the lab's answer is read by the fast reader."""
    message = read_message(LAB_ANSWER)
    answer = classify_message(message, QNAME, "A")
    assert answer == classify_message(dns.message.from_wire(LAB_ANSWER), QNAME, "A")
    assert [a.address for a in answer.addresses] == ["127.0.0.5", "127.0.0.6", "127.0.0.7"]
    assert answer.cname_chain == (QNAME, "c1.edge.test", "e1.edge.test")
    assert answer.error_type is None


def _reply(query: dns.message.Message, *, qname: str = QNAME, rtype: str = "A",
           rdclass: str = "IN", rcode: int = 0, qid: int | None = None,
           questions: int = 1) -> bytes:
    response = dns.message.make_response(query)
    response.id = query.id if qid is None else qid
    response.question = [dns.rrset.RRset(dns.name.from_text(qname),
                                         dns.rdataclass.from_text(rdclass),
                                         dns.rdatatype.from_text(rtype))] * questions
    response.set_rcode(rcode)
    response.answer.append(dns.rrset.from_text(qname + ".", 60, "IN", "A", "127.0.0.5"))
    return response.to_wire()


@pytest.mark.parametrize(("change", "reason"), [
    ({"qid": 0x1234}, "a reply with id 0x1234"),
    ({"qname": "other.example.test"}, "a reply to another question"),
    ({"rtype": "AAAA"}, "a reply to another question"),
    ({"rdclass": "CH"}, "a reply to another question"),
    ({"questions": 0}, "a reply to another question (no question)"),
])
def test_a_reply_to_another_id_or_question_is_set_aside(change: dict, reason: str) -> None:
    query = query_wire(QNAME, "A", None)
    qid = 0x4321
    asked = dns.message.from_wire(query.with_id(qid))
    verdict, message, why = _verdict(_Fast(query, qid), _reply(asked, **change))
    assert (verdict, message) == ("ignore", None) and why.startswith(reason)


@pytest.mark.parametrize("change", [
    {"qname": "API.Example.Test"},  # names compare without case
    {"questions": 2},  # the same question twice is still only ours
    {"questions": 0, "rcode": dns.rcode.SERVFAIL},  # an error may leave the question out
    {"questions": 0, "rcode": dns.rcode.REFUSED},
])
def test_replies_that_do_answer_the_question_are_taken(change: dict) -> None:
    query = query_wire(QNAME, "A", None)
    asked = dns.message.from_wire(query.with_id(0x4321))
    verdict, message, _ = _verdict(_Fast(query, 0x4321), _reply(asked, **change))
    assert verdict == "ok" and isinstance(message, WireMessage)


def test_each_send_patches_only_the_id() -> None:
    query = query_wire(QNAME, "A", "198.51.100.0/24")
    assert query is query_wire(QNAME, "A", "198.51.100.0/24")  # built once
    one, two = query.with_id(1), query.with_id(0xBEEF)
    assert one[2:] == two[2:] and one[:2] == b"\x00\x01" and two[:2] == b"\xbe\xef"
    parsed = dns.message.from_wire(two)
    built = dns.message.make_query(QNAME, "A", use_edns=0, payload=1232, options=[
        dns.edns.ECSOption("198.51.100.0", 24)])
    built.id = 0xBEEF
    assert two == built.to_wire() and parsed.id == 0xBEEF


@pytest.mark.parametrize("links", [1, 15, 16, 17, 20])
def test_a_chain_of_pointers_is_held_to_dnspythons_limit(links: int) -> None:
    """Each owner points at the previous owner: the n-th name follows n pointers, and
    dnspython refuses more than 16. The fast reader's shortcut for bare pointers counts them."""
    out = bytearray(struct.pack("!HHHHHH", 7, 0x8180, 1, links, 0, 0))
    out += b"\x03api\x07example\x04test\x00" + struct.pack("!HH", 1, 1)
    previous = 12
    for i in range(links):
        here = len(out)
        out += struct.pack("!HHHIH", 0xC000 | previous, 1, 1, 60, 4) + bytes([127, 0, 0, i])
        previous = here
    ref, fast, unread = _parse(bytes(out))
    assert (ref is None) == (links > 16)
    if ref is None:
        assert fast is None and unread is not None and unread.malformed
    else:
        assert fast is not None
        assert classify_message(fast, QNAME, "A") == classify_message(ref, QNAME, "A")
        assert len(classify_message(fast, QNAME, "A").addresses) == links


def _named(question: bytes, records: list[tuple[bytes, int, bytes]]) -> bytes:
    """A response to ``api.example.test`` A whose question name and records' owner names and
    rdata are given as raw bytes, so the names can hold any pointer at any offset."""
    out = bytearray(struct.pack("!HHHHHH", 7, 0x8180, 1, len(records), 0, 0))
    out += question + struct.pack("!HH", 1, 1)
    for owner, rtype, rdata in records:
        out += owner + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata
    return bytes(out)


QNAME_WIRE = b"\x03api\x07example\x04test\x00"  # at offset 12, its "example" label at 16
A_RDATA = bytes([127, 0, 0, 5])
PRIVATE = 65280  # a record type dnspython reads as generic bytes: a place to put name bytes
# The first answer record's rdata starts at offset 46 (12 + 22 of question + 2 + 10).
NAME_CASES = {
    "a bare pointer to the question": (True, [(b"\xc0\x0c", 1, A_RDATA)]),
    "a label, then a pointer to a suffix": (True, [(b"\x02e1\xc0\x10", 1, A_RDATA)]),
    "a pointer to a pointer, each further back": (
        True, [(b"\xc0\x0c", PRIVATE, b"\x02yy\x00\x02zz\xc0\x2e"), (b"\xc0\x32", 1, A_RDATA)]),
    "a pointer to itself": (False, [(b"\xc0\x22", 1, A_RDATA)]),
    "a pointer forward": (False, [(b"\xc0\x40", 1, A_RDATA)]),
    # At 46: "zz", then a pointer to 51, after 46: backwards from the owner, not from 46.
    "a second pointer not before the first's target": (
        False, [(b"\xc0\x0c", PRIVATE, b"\x02zz\xc0\x33\x02yy\x00"), (b"\xc0\x2e", 1, A_RDATA)]),
    # At 46 a 4-byte label of which 3 bytes are there: the rest would be the owner's own bytes.
    "a target whose labels overlap the name pointing at it": (
        False, [(b"\xc0\x0c", PRIVATE, b"\x04ab"), (b"\xc0\x2e", 1, A_RDATA)]),
    "a label of type 0x40": (False, [(b"\x41a\x00", 1, A_RDATA)]),
    "a label of type 0x80": (False, [(b"\x81a\x00", 1, A_RDATA)]),
    "a name of 256 bytes, through a pointer": (
        False, [(b"\xc0\x0c", PRIVATE, (b"\x3f" + b"a" * 63) * 3 + b"\x3c" + b"b" * 60 + b"\x00"),
                (b"\x01c\xc0\x2e", 1, A_RDATA)]),
    "a name of 255 bytes, through a pointer": (
        True, [(b"\xc0\x0c", PRIVATE, (b"\x3f" + b"a" * 63) * 3 + b"\x3b" + b"b" * 59 + b"\x00"),
               (b"\x01c\xc0\x2e", 1, A_RDATA)]),
    "a CNAME target running past its rdata": (
        False, [(b"\xc0\x0c", 5, b"\x02e1"), (b"\x00\x01", 1, A_RDATA)]),
    "a CNAME target with a byte after it": (
        False, [(b"\xc0\x0c", 5, b"\x02e1\xc0\x10\x00"), (b"\x02e1\xc0\x10", 1, A_RDATA)]),
    "a CNAME target, then its addresses": (
        True, [(b"\xc0\x0c", 5, b"\x02e1\xc0\x10"), (b"\xc0\x2e", 1, A_RDATA)]),
}


@pytest.mark.parametrize("case", sorted(NAME_CASES))
def test_names_are_decompressed_by_dnspythons_rules(case: str) -> None:
    """Each case is first checked to be what it says against ``from_wire`` (it reads it, or
    it raises); the fast reader must then agree, and classify the same when both read it."""
    readable, records = NAME_CASES[case]
    wire = _named(QNAME_WIRE, records)
    ref, fast, unread = _parse(wire)
    assert (ref is not None) == readable, "the case is not what it says"
    if ref is None:
        assert fast is None and unread is not None and unread.malformed
    else:
        assert fast is not None
        assert classify_message(fast, QNAME, "A") == classify_message(ref, QNAME, "A")


def test_the_names_kept_between_messages_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names interned by the reader and the texts the classification remembers stay within
    their limits whatever names the answers hold, and a name's text is still its own."""
    from pipeline.probe import dns_answer, dns_read
    monkeypatch.setattr(dns_read, "NAME_CACHE", 50)
    monkeypatch.setattr(dns_answer._MEMO, "limit", 40)
    for i in range(300):
        label = f"n{i}".encode()
        wire = _named(QNAME_WIRE, [(b"\xc0\x0c", 5, bytes([len(label)]) + label + b"\xc0\x10"),
                                   (b"\xc0\x2e", 1, A_RDATA)])
        answer = classify_message(read_message(wire), QNAME, "A")
        assert answer.cname_chain == (QNAME, f"n{i}.example.test")
        assert len(dns_read._KNOWN) <= 50
        assert len(dns_answer._MEMO._texts) <= 40 + 10 and len(dns_answer._MEMO._keys) <= 50
