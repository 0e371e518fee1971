"""Read a DNS answer for what a check needs, with dnspython's wire-level readers where they pay.

``dns.message.from_wire`` builds a complete message object: every rdata is constructed, then
re-serialised to be hashed for the rdataset's duplicate check, and each record passes through
dnspython's immutable-object constructors. For the lab's 169-byte answer that is ≈ 300–500 µs,
most of a query's CPU. A check needs far less: the header (id, flags, rcode with its EDNS
extension), the question (to reject an answer to another question), the answer section's
records with their TTLs, and the OPT record's flags and options (ECS scope).

This reader walks the message with ``dns.wire.Parser``, ``restrict_to`` and
``dns.rdata.from_wire_parser`` for every record type it has no reason to special-case; its names
it decompresses itself, by dnspython's rules, and interns across messages (``_Names`` says
why). It keeps ``from_wire``'s semantics exactly: records of one (owner, class, type) merge
into one set in order of first appearance, duplicates dropped, the set's TTL the smallest
seen (a TTL above 2^31 - 1 read as 0), a CNAME set holding only the last CNAME, one OPT and
only in the additional section, no TSIG (we hold no key), no trailing bytes. Only class-IN A,
AAAA and CNAME, the records a check reads, skip dnspython's rdata objects: an address is four
or sixteen bytes turned to text by dnspython's own ``inet_ntoa``, a CNAME target one name read.

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
_QUESTION = struct.Struct("!HH")
_ROOT_KEY = (b"",)
_MAX_HOPS = dns.name.MAX_COMPRESSION_POINTER_CHAIN
# The rcodes for which an answer may leave the question out (dnspython's ``is_response``).
_BARE_RCODES = frozenset({dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP,
                          dns.rcode.REFUSED})


NAME_CACHE = 1024  # distinct names kept interned (``_Names``); the table is emptied when full
# labels as sent -> (the name, its comparison key: the labels lowercased, as dnspython compares)
_KNOWN: dict[tuple[bytes, ...], tuple[dns.name.Name, tuple[bytes, ...]]] = {}


class _Names:
    """The message's names, decompressed here and interned across messages.

    Why not dnspython's ``from_wire_parser``: it reads a label at a time through the parser's
    bounds-checked calls and builds a new ``Name`` (labels validated, immutable) for every name
    of every message, and comparing or hashing that ``Name`` lowercases its labels each time;
    the names were half of this reader's CPU and the classification's keys most of the rest
    (cProfile, docs/BENCHMARKS.md). A probe meets the same few names query after query, so the
    labels read here look up a table: each distinct name is made once, by dnspython's ``Name``
    (which still validates it: 255 bytes at most), with its key.

    The decompression keeps ``from_wire_parser``'s rules exactly (the property test holds it to
    them): a label length of 0x40–0xBF is refused; a pointer must point before the part of the
    name that led to it (so before every pointer already followed), at most
    ``MAX_COMPRESSION_POINTER_CHAIN`` of them, and the labels it leads to must end before that
    part. The name ends, in the message, after its first pointer or its zero byte. A name that
    is only a pointer to the start of a name already read is that name again, its labels not
    walked (the pointer and the chain's limit still checked)."""

    __slots__ = ("at", "parser")

    def __init__(self, parser: dns.wire.Parser) -> None:
        self.parser = parser
        # offset -> ((name, key), pointers followed) of each name read in this message
        self.at: dict[int, tuple[tuple[dns.name.Name, tuple[bytes, ...]], int]] = {}

    def read(self, end: int | None = None) -> tuple[dns.name.Name, tuple[bytes, ...]]:
        """The name at the parser's position, which moves past it; ``end``: the bytes it may
        take end there (an rdata's end), else at the parser's end."""
        p = self.parser
        wire, start = p.wire, p.current
        limit = p.end if end is None else end
        if start + 2 <= limit and wire[start] >= 0xC0:  # a bare pointer to a name read?
            target = ((wire[start] & 0x3F) << 8) | wire[start + 1]
            hit = self.at.get(target)
            if hit is not None and hit[1] < _MAX_HOPS and target < start:
                _move(p, start + 2)
                self.at[start] = (hit[0], hit[1] + 1)
                return hit[0]
        labels, after, hops = _decompress(wire, start, limit)
        known = _KNOWN.get(labels)
        if known is None:
            if len(_KNOWN) >= NAME_CACHE:
                _KNOWN.clear()
            name = dns.name.Name(labels)  # raises NameTooLong beyond 255 bytes, as dnspython
            known = _KNOWN[labels] = (name, tuple(x.lower() for x in labels))
        _move(p, after)
        self.at[start] = (known, hops)
        return known


def _move(parser: dns.wire.Parser, to: int) -> None:
    """The parser's position set past what was read by hand (its ``furthest`` too, as its own
    reads keep it)."""
    parser.current = to
    if to > parser.furthest:
        parser.furthest = to


def _decompress(wire: bytes, at: int, end: int) -> tuple[tuple[bytes, ...], int, int]:
    """The labels (ending in the root's empty label) of the name at ``at``, where it ends in
    the message, and how many pointers it followed; ``Unread`` for what dnspython refuses."""
    labels: list[bytes] = []
    part = at  # where the part of the name being read began: pointers must point before it
    after = -1
    hops = 0
    while True:
        if at >= end:
            raise Unread("a name running past its end")
        n = wire[at]
        if n == 0:
            break
        if n < 0x40:
            at += 1 + n
            if at > end:
                raise Unread("a label running past its end")
            labels.append(wire[at - n:at])
        elif n >= 0xC0:
            if at + 2 > end:
                raise Unread("a compression pointer cut short")
            target = ((n & 0x3F) << 8) | wire[at + 1]
            if target >= part:
                raise Unread("a compression pointer that does not point backwards")
            hops += 1
            if hops > _MAX_HOPS:
                raise Unread("a chain of more compression pointers than dnspython follows")
            if after < 0:
                after = at + 2
            end = part  # what it points at must not overlap the name read so far
            at = part = target
        else:
            raise Unread(f"a label of unknown type (0x{n:02x})")
    labels.append(b"")
    return tuple(labels), (at + 1 if after < 0 else after), hops


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
            name = names.read()[0]
            rdtype, rdclass = _fixed(parser, _QUESTION)
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
        name, name_key = names.read()
        rdtype, rdclass, ttl, rdlen = _fixed(parser, _RR)
        if rdtype in (_OPT, _TSIG):
            raise Unread("an OPT or TSIG record in the answer section")
        if ttl > _MAX_TTL:
            ttl = 0
        if rdclass == _IN and rdtype in (_A, _AAAA, _CNAME):
            key, item = _fast_rdata(names, rdtype, rdlen)
            rrset = index.get((name_key, rdclass, rdtype, 0))
            if rrset is None:
                rrset = index[(name_key, rdclass, rdtype, 0)] = WireRRset(name, rdclass, rdtype)
                out.append(rrset)
            assert isinstance(rrset, WireRRset)
            rrset.add(key, item, ttl)
            continue
        with parser.restrict_to(rdlen):
            rd = dns.rdata.from_wire_parser(rdclass, rdtype, parser, None)
        covers = rd.covers()
        generic = index.get((name_key, rdclass, rdtype, covers))
        if generic is None:
            generic = dns.rrset.RRset(name, rdclass, rdtype, covers)
            index[(name_key, rdclass, rdtype, covers)] = generic
            out.append(generic)
        assert isinstance(generic, dns.rrset.RRset)
        generic.add(rd, ttl)
    return out


def _fixed(parser: dns.wire.Parser, layout: struct.Struct) -> tuple:
    """The fixed-size fields at the parser's position (past them after)."""
    at = parser.current
    if at + layout.size > parser.end:
        raise Unread("a record cut short")
    _move(parser, at + layout.size)
    return layout.unpack_from(parser.wire, at)


def _fast_rdata(names: _Names, rdtype: int, rdlen: int
                ) -> tuple[object, WireAddress | WireTarget]:
    """A class-IN A/AAAA (its bytes are the duplicate key) or CNAME rdata."""
    parser = names.parser
    if rdlen > parser.remaining():
        raise Unread("an rdata longer than the message")
    if rdtype == _CNAME:
        end = parser.current + rdlen
        target = names.read(end)[0]
        if parser.current != end:
            raise Unread("a CNAME rdata with bytes after its name")
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
        name_key = names.read()[1]
        rdtype, rdclass, ttl, rdlen = _fixed(parser, _RR)
        if rdtype == _TSIG:
            raise Unread("a TSIG record (no key to check it)")
        if rdtype == _OPT and (message is None or message.has_opt or name_key != _ROOT_KEY):
            raise Unread("an OPT record out of place (authority, second, or not at the root)")
        with parser.restrict_to(rdlen):
            rd = dns.rdata.from_wire_parser(rdclass, rdtype, parser, None)
        if rdtype == _OPT:
            assert message is not None
            message.ednsflags, message.options = ttl, rd.options  # type: ignore[attr-defined]
            message.has_opt = True
