"""What one DNS answer says, as a pure function of the message: no I/O, never raises.

Kept apart from the transport so every kind of hostile answer (and fuzzed wire data) can be fed
to it directly. Only records of class IN count: an ``A`` record of class CH carries an integer
address and one of class HS generic rdata, neither of which may reach the connect or reverse-DNS
code. The CNAME chain is walked inside the answer section; the walk is bounded by the records
the answer holds (each link must be a distinct owner), a loop is reported as ``dns.cname_loop``
and a chain longer than :data:`MAX_CHAIN` links as ``dns.cname_chain_too_long``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from pipeline.probe.dns_read import WireMessage

# A parsed response: dnspython's message, or what the fast reader (dns_read) gives.
Response = dns.message.Message | WireMessage

# Real resolvers give up far earlier (unbound after ~11 links); 30-link chains still resolve.
MAX_CHAIN = 64

_RCODE_ERRORS = {
    dns.rcode.SERVFAIL: "dns.servfail",
    dns.rcode.NXDOMAIN: "dns.nxdomain",
    dns.rcode.REFUSED: "dns.refused",
    dns.rcode.FORMERR: "dns.formerr",
    dns.rcode.NOTIMP: "dns.notimp",
}


@dataclass(frozen=True, slots=True)
class AnswerAddress:
    address: str
    ttl: int


# One record of the answer section as sent: (owner name, type, class, TTL, data as text). The
# data is None when the record cannot be printed; names are written without the final dot.
AnswerRecord = tuple[str, str, str, int, str | None]
_NAME_DATA = frozenset({dns.rdatatype.CNAME, dns.rdatatype.DNAME, dns.rdatatype.NS,
                        dns.rdatatype.PTR})


@dataclass(frozen=True, slots=True)
class Answer:
    """The classified content of one response (``error_type`` None: usable addresses)."""

    rcode: str | None = None
    flags: tuple[str, ...] = ()
    addresses: tuple[AnswerAddress, ...] = ()
    cname_chain: tuple[str, ...] = ()
    ecs_source_prefix: int | None = None
    ecs_scope_prefix: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    records: tuple[AnswerRecord, ...] = ()


NAME_MEMO = 1024  # names whose text and key the classification remembers (``Names``)


class Names:
    """Text and comparison key of each name, worked out once.

    dnspython's ``Name`` lowercases every label to hash or compare and escapes every label to
    print, each time; one answer names the same owner several times, and the fast reader
    hands the same interned object for a name message after message (``dns_read._Names``).
    Memoised by object identity, the object kept alive here so its id cannot be reused; the
    classification keeps one memo for every message (``_MEMO``), emptied when it holds
    ``limit`` names (the names of ``from_wire``'s messages are new objects each time and would
    otherwise pile up). The key is the lowercased labels, which are equal exactly when the
    names are (absolute names end in the empty label).
    """

    __slots__ = ("_keys", "_texts", "limit")

    def __init__(self, limit: int = NAME_MEMO) -> None:
        self._texts: dict[int, tuple[dns.name.Name, str]] = {}
        self._keys: dict[int, tuple[dns.name.Name, tuple[bytes, ...]]] = {}
        self.limit = limit

    def bounded(self) -> Names:
        """This memo, emptied first if it has reached its limit."""
        if len(self._texts) >= self.limit or len(self._keys) >= self.limit:
            self._texts.clear()
            self._keys.clear()
        return self

    def text(self, name: dns.name.Name) -> str:
        """``name.to_text(omit_final_dot=True)``."""
        hit = self._texts.get(id(name))
        if hit is None:
            hit = self._texts[id(name)] = (name, name.to_text(omit_final_dot=True))
        return hit[1]

    def key(self, name: dns.name.Name) -> tuple[bytes, ...]:
        hit = self._keys.get(id(name))
        if hit is None:
            hit = self._keys[id(name)] = (name, tuple(x.lower() for x in name.labels))
        return hit[1]


@dataclass(frozen=True, slots=True)
class Chain:
    names: tuple[dns.name.Name, ...]
    owner: dns.name.Name
    problem: str | None = None  # "dns.cname_loop" | "dns.cname_chain_too_long"

    def text(self, names: Names | None = None) -> tuple[str, ...]:
        memo = names or Names()
        return tuple(memo.text(n) for n in self.names)


def walk_chain(answer: list[dns.rrset.RRset], qname: dns.name.Name,
               max_links: int = MAX_CHAIN, names: Names | None = None) -> Chain:
    """Follow class-IN CNAMEs from ``qname``; each owner is used once, so the walk ends."""
    key = (names or Names()).key
    targets: dict[tuple[bytes, ...], dns.name.Name] = {}
    for rrset in answer:
        if (rrset.rdclass == dns.rdataclass.IN and rrset.rdtype == dns.rdatatype.CNAME
                and len(rrset) and key(rrset.name) not in targets):
            targets[key(rrset.name)] = rrset[0].target  # two targets is illegal: the first wins
    chain = [qname]
    seen = {key(qname)}
    current = qname
    while key(current) in targets:
        nxt = targets[key(current)]
        if key(nxt) in seen:
            return Chain(tuple(chain), current, "dns.cname_loop")
        if len(chain) > max_links:
            return Chain(tuple(chain), current, "dns.cname_chain_too_long")
        chain.append(nxt)
        seen.add(key(nxt))
        current = nxt
    return Chain(tuple(chain), current)


def records_at(answer: list[dns.rrset.RRset], owner: dns.name.Name,
               rdtype: dns.rdatatype.RdataType, names: Names | None = None
               ) -> list[dns.rrset.RRset]:
    """The class-IN RRsets of ``rdtype`` owned by ``owner``."""
    key = (names or Names()).key
    want = key(owner)
    return [r for r in answer if r.rdtype == rdtype and r.rdclass == dns.rdataclass.IN
            and key(r.name) == want]


def other_classes(answer: list[dns.rrset.RRset]) -> list[str]:
    """The names of the non-IN classes present in the answer section (sorted, unique)."""
    return sorted({dns.rdataclass.to_text(r.rdclass) for r in answer
                   if r.rdclass != dns.rdataclass.IN})


_FLAG_BITS = tuple((f, int(getattr(dns.flags, f))) for f in ("AA", "TC", "RD", "RA", "AD", "CD"))
_DO = int(dns.flags.DO)
_type_text = lru_cache(maxsize=1024)(dns.rdatatype.to_text)
_class_text = lru_cache(maxsize=256)(dns.rdataclass.to_text)
_qname = lru_cache(maxsize=4096)(dns.name.from_text)


_MEMO = Names()


def _flags(response: Response) -> tuple[str, ...]:
    flags = int(response.flags)
    names = [f for f, bit in _FLAG_BITS if flags & bit]
    if int(response.ednsflags) & _DO:
        names.append("DO")
    return tuple(names)


def _rdata_text(rdtype: int, rdata: object) -> str | None:
    try:
        text = rdata.to_text()  # type: ignore[attr-defined]
    except Exception:  # a record dnspython parsed but cannot print: keep the rest of it
        return None
    if rdtype in _NAME_DATA and text.endswith(".") and text != ".":
        text = text[:-1]
    return text


def answer_records(answer: list[dns.rrset.RRset], names: Names | None = None
                   ) -> tuple[AnswerRecord, ...]:
    """The whole answer section in the order sent, every class and type (CNAMEs included)."""
    memo = names or Names()
    out: list[AnswerRecord] = []
    for rrset in answer:
        name = memo.text(rrset.name)
        rtype = _type_text(rrset.rdtype)
        rclass = _class_text(rrset.rdclass)
        for rdata in rrset:
            out.append((name, rtype, rclass, int(rrset.ttl),
                        _record_text(rrset.rdtype, rdata, memo)))
    return tuple(out)


def _record_text(rdtype: int, rdata: object, memo: Names) -> str | None:
    """``_rdata_text``; a name target (absolute, not the root) through the memo: the same
    text, as its final dot is all that is dropped."""
    target = getattr(rdata, "target", None) if rdtype in _NAME_DATA else None
    if isinstance(target, dns.name.Name) and len(target.labels) > 1 and target.is_absolute():
        return memo.text(target)
    return _rdata_text(rdtype, rdata)


def _ecs(response: Response) -> tuple[int | None, int | None]:
    for opt in response.options:
        if isinstance(opt, dns.edns.ECSOption):
            return opt.srclen, opt.scopelen
    return None, None


def _addresses(rrsets: list[dns.rrset.RRset], version: int
               ) -> tuple[tuple[AnswerAddress, ...], int]:
    """Valid addresses of the asked family (first occurrence kept) and how many were not."""
    out: list[AnswerAddress] = []
    seen: set[str] = set()
    bad = 0
    for rrset in rrsets:
        for rdata in rrset:
            text = getattr(rdata, "address", None)
            known = getattr(rdata, "version", None)  # the fast reader's: read from 4/16 bytes
            try:
                ok = (known == version if known is not None else isinstance(text, str)
                      and ipaddress.ip_address(text).version == version)
            except ValueError:
                ok = False
            if not ok:
                bad += 1
            elif text not in seen:
                seen.add(text)
                out.append(AnswerAddress(text, int(rrset.ttl)))
    return tuple(out), bad


def classify_message(response: Response, qname: str, rtype: str) -> Answer:
    """Classify a parsed response to ``qname``/``rtype``; any surprise is ``dns.unexpected``."""
    try:
        return _classify(response, qname, rtype)
    except Exception as exc:  # a result for anything a peer can send, never an exception
        return Answer(error_type="dns.unexpected", error_message=f"{type(exc).__name__}: {exc}")


def classify_wire(wire: bytes, qname: str, rtype: str) -> Answer:
    """Parse and classify raw response bytes (unparsable: ``dns.malformed``)."""
    try:
        response = dns.message.from_wire(wire)
    except Exception as exc:
        return Answer(error_type="dns.malformed",
                      error_message=f"unparsable answer ({type(exc).__name__}: {exc})")
    return classify_message(response, qname, rtype)


def _classify(response: Response, qname: str, rtype: str) -> Answer:
    rdtype = dns.rdatatype.from_text(rtype)
    rcode = response.rcode()
    rcode_text = dns.rcode.to_text(rcode)
    names = _MEMO.bounded()
    chain = walk_chain(response.answer, _qname(qname), names=names)
    addresses: tuple[AnswerAddress, ...] = ()
    bad = 0
    if rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        version = 4 if rdtype == dns.rdatatype.A else 6
        addresses, bad = _addresses(records_at(response.answer, chain.owner, rdtype, names),
                                    version)
    error_type = _RCODE_ERRORS.get(rcode)
    if error_type is None and rcode != dns.rcode.NOERROR:
        error_type = f"dns.{rcode_text.lower()}"
    message = None if error_type is None else f"{rcode_text} from resolver"
    if error_type is None and chain.problem == "dns.cname_loop":
        error_type = chain.problem
        message = f"CNAME loop at {chain.owner} after {len(chain.names)} names"
    elif error_type is None and chain.problem:
        error_type = chain.problem
        message = f"CNAME chain longer than {MAX_CHAIN} links"
    elif error_type is None and not addresses:
        others = other_classes(response.answer)
        if bad:
            error_type = "dns.malformed"
            message = f"{bad} {rtype} record(s) without a valid address"
        elif others:
            error_type = "dns.unexpected_class"
            message = f"answer holds only records of class {', '.join(others)}, not IN"
        else:
            error_type, message = "dns.nodata", f"{rcode_text} from resolver"
    src, scope = _ecs(response)
    return Answer(
        rcode=rcode_text, flags=_flags(response), addresses=addresses,
        cname_chain=chain.text(names), ecs_source_prefix=src, ecs_scope_prefix=scope,
        error_type=error_type, error_message=message,
        records=answer_records(response.answer, names),
    )
