"""Each question's wire form, built once; a send only writes a fresh 16-bit id into it.

A cycle asks the same few (name, type, resolver options) questions every time. Building the
query with ``dns.message.make_query`` and serialising it with ``to_wire`` costs ≈ 130 µs of CPU
per send (name parsing, the EDNS option objects, the renderer), while the bytes differ from one
send to the next only in the first two: the id. So the query is built once by dnspython itself
(the bytes on the wire are exactly what ``make_query(...).to_wire()`` gives) and kept in a small
cache keyed by everything that shapes it; a send costs a random id and one bytes concatenation.

The id stays unpredictable per send (``dns.entropy.random_16``, what dnspython itself uses), so
a prebuilt template gives an off-path spoofer nothing more to guess with.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

import dns.edns
import dns.entropy
import dns.exception
import dns.message
import dns.name
import dns.rdatatype

__all__ = ["BadName", "QueryWire", "build_query", "new_id", "query_wire"]

# EDNS as ``probe_dns`` has always asked: version 0, a 1232-byte payload (the DNS flag day 2020
# figure: no IP fragmentation on common paths).
EDNS_PAYLOAD = 1232
_CACHE = 4096  # distinct questions kept: targets × types × client subnets of a large config


class BadName(Exception):
    """The question cannot be asked: the name breaks the DNS rules (label > 63, name > 255...)."""


def build_query(qname: str, rtype: str, client_subnet: str | None
                ) -> dns.message.QueryMessage:
    """The question as a dnspython message (EDNS, the client subnet); ``BadName`` when the name
    cannot be asked. DoT and DoH send this object; UDP/TCP send its cached wire form."""
    options: list[dns.edns.Option] = []
    if client_subnet:
        net = ipaddress.ip_network(client_subnet, strict=False)
        options.append(dns.edns.ECSOption(str(net.network_address), net.prefixlen))
    if not qname.strip(".").strip():
        raise BadName(f"{qname!r}: empty name")
    try:
        name = dns.name.from_text(qname)
        rdtype = dns.rdatatype.from_text(rtype)
    except dns.exception.DNSException as exc:
        raise BadName(f"{qname!r} {rtype}: {type(exc).__name__}: {exc}") from exc
    return dns.message.make_query(
        name, rdtype, use_edns=0, payload=EDNS_PAYLOAD, options=options or None
    )


@dataclass(frozen=True, slots=True)
class QueryWire:
    """One question's wire form with id 0, and what an answer to it must repeat.

    ``question`` is the message the template was rendered from (its id is meaningless); the
    reference path (``dns.message.Message.is_response``) and the encrypted transports use it.
    """

    template: bytes
    qname: dns.name.Name
    rdtype: int
    rdclass: int
    question: dns.message.QueryMessage

    def with_id(self, qid: int) -> bytes:
        """The query as sent with id ``qid`` (0..65535)."""
        return qid.to_bytes(2, "big") + self.template[2:]


@lru_cache(maxsize=_CACHE)
def query_wire(qname: str, rtype: str, client_subnet: str | None) -> QueryWire:
    """The cached wire form of one question (``BadName`` is raised, not cached)."""
    message = build_query(qname, rtype, client_subnet)
    message.id = 0
    q = message.question[0]
    return QueryWire(message.to_wire(), q.name, int(q.rdtype), int(q.rdclass), message)


def new_id() -> int:
    """A fresh, unpredictable query id."""
    return dns.entropy.random_16()

