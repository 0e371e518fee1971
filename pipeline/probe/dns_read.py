"""Read a DNS answer for what a check needs, through dnspython's own wire-level readers.

``dns.message.from_wire`` builds a complete message object: every rdata is constructed, then
re-serialised to be hashed for the rdataset's duplicate check, and each record passes through
dnspython's immutable-object constructors. For the lab's 169-byte answer that is ≈ 300–500 µs,
most of a query's CPU. A check needs far less: the header (id, flags, rcode with its EDNS
extension), the question (to reject an answer to another question), the answer section's
records with their TTLs, and the OPT record's flags and options (ECS scope).

This reader walks the message with the same parts ``from_wire`` uses — ``dns.wire.Parser``,
its name reader (compression pointers checked the same way), ``restrict_to`` for each rdata,
``dns.rdata.from_wire_parser`` for every record type it has no reason to special-case — and
keeps ``from_wire``'s semantics exactly: records of one (owner, class, type) merge into one set
in order of first appearance, duplicates dropped, the set's TTL the smallest seen (a TTL above
2^31 - 1 read as 0), a CNAME set holding only the last CNAME, one OPT and only in the
additional section, no TSIG (we hold no key), no trailing bytes. Only class-IN A, AAAA and
CNAME, the records a check reads, skip dnspython's rdata objects: an address is four or sixteen
bytes turned to text by dnspython's own ``inet_ntoa``, a CNAME target one name read.

Anything it does not vouch for raises :class:`Unread`: a malformed message (``from_wire``
raises on it too; the property test in tests/pipeline/test_dns_read.py holds the reader to
that) or a shape it leaves to ``from_wire`` (an opcode other than QUERY). The caller then falls
back to ``from_wire``, which stays the reference, so a rare message costs what it always did.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.ipv4
import dns.ipv6
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.rrset
import dns.wire

__all__ = ["Unread", "WireAddress", "WireMessage", "WireRRset", "WireTarget", "read_message"]

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_A, _CNAME, _AAAA = int(dns.rdatatype.A), int(dns.rdatatype.CNAME), int(dns.rdatatype.AAAA)
_OPT, _TSIG = int(dns.rdatatype.OPT), int(dns.rdatatype.TSIG)
_IN = 1
_MAX_TTL = 0x7FFFFFFF
_ROOT = dns.name.root
_MAX_HOPS = dns.name.MAX_COMPRESSION_POINTER_CHAIN
# The rcodes for which an answer may leave the question out (dnspython's ``is_response``).
_BARE_RCODES = frozenset({dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP,
                          dns.rcode.REFUSED})


class _Names:
    """The name reader with one shortcut: a name that is only a compression pointer to the
    start of a name already read is that name again. ``from_wire_parser`` would follow the
    pointer and rebuild the same labels; the checks it makes on the way are made here (the
    pointer points backwards, the chain of pointers stays within dnspython's limit), and every
    other name is read by dnspython itself. Three A records under one CNAME target cost one
    name read instead of three."""

    __slots__ = ("at", "parser")

    def __init__(self, parser: dns.wire.Parser) -> None:
        self.parser = parser
        self.at: dict[int, tuple[dns.name.Name, int]] = {}  # offset -> (name, pointers)

    def read(self) -> dns.name.Name:
        p = self.parser
        wire, cur = p.wire, p.current
        if cur < p.end and wire[cur] == 0:  # the root (an OPT record's owner): one byte
            p.furthest = max(p.furthest, cur + 1)
            p.current = p.furthest
            return _ROOT
        if cur + 2 <= p.end and wire[cur] >= 0xC0:
            target = ((wire[cur] & 0x3F) << 8) | wire[cur + 1]
            hit = self.at.get(target)
            if hit is not None and target < cur and hit[1] < _MAX_HOPS:
                p.furthest = max(p.furthest, cur + 2)
                p.current = p.furthest
                self.at[cur] = (hit[0], hit[1] + 1)
                return hit[0]
        name = p.get_name(None, True)
        self.at[cur] = (name, _pointers(wire, cur))
        return name


def _pointers(wire: bytes, at: int) -> int:
    """How many compression pointers the (already validated) name at ``at`` follows."""
    hops = 0
    while (n := wire[at]) != 0:
        if n >= 0xC0:
            hops += 1
            at = ((n & 0x3F) << 8) | wire[at + 1]
        else:
            at += n + 1
    return hops


class Unread(Exception):
    """The message is not one the fast reader vouches for; ``malformed``: ``from_wire`` fails
    on it too (False: a shape left to ``from_wire``, such as another opcode)."""

    def __init__(self, reason: str, malformed: bool = True) -> None:
        super().__init__(reason)
        self.malformed = malformed


class WireAddress:
    """An A/AAAA rdata as far as a check reads it: the address text, and its IP version
    (known from the 4 or 16 bytes it was read from, so the classifier need not parse it)."""

    __slots__ = ("address", "version")

    def __init__(self, address: str, version: int) -> None:
        self.address = address
        self.version = version

    def to_text(self) -> str:
        return self.address


class WireTarget:
    """A CNAME rdata as far as a check reads it: the target name."""

    __slots__ = ("target",)

    def __init__(self, target: dns.name.Name) -> None:
        self.target = target

    def to_text(self) -> str:
        return self.target.to_text()


@dataclass(slots=True)
class WireRRset:
    """The records of one owner, class IN and type A/AAAA/CNAME, as ``from_wire`` merges them
    (keyed by the address bytes, or one CNAME)."""

    name: dns.name.Name
    rdclass: int
    rdtype: int
    ttl: int = 0
    items: dict[object, WireAddress | WireTarget] = field(default_factory=dict)

    def add(self, key: object, item: WireAddress | WireTarget, ttl: int) -> None:
        if not self.items or ttl < self.ttl:  # ``Rdataset.update_ttl``
            self.ttl = ttl
        if self.rdtype == _CNAME:  # a singleton type: the last one replaces the set
            self.items.clear()
        self.items.setdefault(key, item)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[WireAddress | WireTarget]:
        return iter(self.items.values())

    def __getitem__(self, i: int) -> WireAddress | WireTarget:
        return list(self.items.values())[i]


@dataclass(slots=True)
class WireMessage:
    """What a check reads of a response, with the attributes of ``dns.message.Message`` that
    the classification uses (``flags``, ``ednsflags``, ``options``, ``answer``, ``rcode()``)."""

    id: int
    flags: int
    question: list[tuple[dns.name.Name, int, int]]
    answer: list[WireRRset | dns.rrset.RRset]
    ednsflags: int = 0
    options: tuple = ()
    has_opt: bool = False
    wire: bytes = b""

    def rcode(self) -> dns.rcode.Rcode:
        return dns.rcode.from_flags(self.flags, self.ednsflags)

    def wire_message(self) -> dns.message.Message:
        """The full dnspython message (for ``dns.raw``, which keeps dnspython's rendering)."""
        return dns.message.from_wire(self.wire)

    def answers(self, qname: dns.name.Name, rdtype: int, rdclass: int) -> bool:
        """Does this respond to that question (``Message.is_response`` past id, QR, opcode)?"""
        if not self.question:
            return self.rcode() in _BARE_RCODES
        return all(n == qname and t == rdtype and c == rdclass for n, t, c in self.question)


def read_message(wire: bytes) -> WireMessage:
    """The parts of ``wire`` a check reads; :class:`Unread` when not vouched for."""
    if len(wire) < _HEADER.size:
        raise Unread(f"a {len(wire)}-byte message, shorter than a DNS header")
    qid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if (flags >> 11) & 0xF:
        raise Unread("an opcode other than QUERY", malformed=False)
    parser = dns.wire.Parser(wire, _HEADER.size)
    names = _Names(parser)
    try:
        question = []
        for _ in range(qdcount):
            name = names.read()
            rdtype, rdclass = parser.get_struct("!HH")
            question.append((name, rdtype, rdclass))
        message = WireMessage(qid, flags, question, _answer(names, ancount), wire=wire)
        _other(names, nscount, None)
        _other(names, arcount, message)
        if parser.remaining():
            raise Unread("trailing bytes after the last record")
    except Unread:
        raise
    except Exception as exc:  # every failure of hostile bytes, as from_wire fails on them
        raise Unread(f"{type(exc).__name__}: {exc}") from exc
    return message


def _answer(names: _Names, count: int) -> list[WireRRset | dns.rrset.RRset]:
    """The answer section merged as ``from_wire`` merges it, in order of first appearance."""
    parser = names.parser
    out: list[WireRRset | dns.rrset.RRset] = []
    index: dict[tuple, WireRRset | dns.rrset.RRset] = {}
    for _ in range(count):
        name = names.read()
        rdtype, rdclass, ttl, rdlen = _RR.unpack(parser.get_bytes(_RR.size))
        if rdtype in (_OPT, _TSIG):
            raise Unread("an OPT or TSIG record in the answer section")
        if ttl > _MAX_TTL:
            ttl = 0
        if rdclass == _IN and rdtype in (_A, _AAAA, _CNAME):
            key, item = _fast_rdata(names, rdtype, rdlen)
            rrset = index.get((name, rdclass, rdtype, 0))
            if rrset is None:
                rrset = index[(name, rdclass, rdtype, 0)] = WireRRset(name, rdclass, rdtype)
                out.append(rrset)
            assert isinstance(rrset, WireRRset)
            rrset.add(key, item, ttl)
            continue
        with parser.restrict_to(rdlen):
            rd = dns.rdata.from_wire_parser(rdclass, rdtype, parser, None)
        covers = rd.covers()
        generic = index.get((name, rdclass, rdtype, covers))
        if generic is None:
            generic = dns.rrset.RRset(name, rdclass, rdtype, covers)
            index[(name, rdclass, rdtype, covers)] = generic
            out.append(generic)
        assert isinstance(generic, dns.rrset.RRset)
        generic.add(rd, ttl)
    return out


def _fast_rdata(names: _Names, rdtype: int, rdlen: int
                ) -> tuple[object, WireAddress | WireTarget]:
    """A class-IN A/AAAA (its bytes are the duplicate key) or CNAME rdata."""
    parser = names.parser
    if rdlen > parser.remaining():
        raise Unread("an rdata longer than the message")
    if rdtype == _CNAME:
        with parser.restrict_to(rdlen):
            target = names.read()
        return None, WireTarget(target)
    data = parser.get_bytes(rdlen)
    if rdtype == _A:
        return data, WireAddress(dns.ipv4.inet_ntoa(data), 4)  # raises unless 4 bytes
    return data, WireAddress(dns.ipv6.inet_ntoa(data), 6)  # raises unless 16 bytes


def _other(names: _Names, count: int, message: WireMessage | None) -> None:
    """Authority (``message`` None) or additional records: read and checked as ``from_wire``
    reads them, kept only for the OPT record (EDNS flags, options)."""
    parser = names.parser
    for _ in range(count):
        name = names.read()
        rdtype, rdclass, ttl, rdlen = _RR.unpack(parser.get_bytes(_RR.size))
        if rdtype == _TSIG:
            raise Unread("a TSIG record (no key to check it)")
        if rdtype == _OPT and (message is None or message.has_opt or name != _ROOT):
            raise Unread("an OPT record out of place (authority, second, or not at the root)")
        with parser.restrict_to(rdlen):
            rd = dns.rdata.from_wire_parser(rdclass, rdtype, parser, None)
        if rdtype == _OPT:
            assert message is not None
            message.ednsflags, message.options = ttl, rd.options  # type: ignore[attr-defined]
            message.has_opt = True
