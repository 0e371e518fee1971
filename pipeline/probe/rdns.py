"""Reverse DNS of an edge address: the edge hostname names the CDN deployment that served it.

Edge hostnames change far more slowly than the address rotation, so each answer is cached for its
TTL (in the pipeline's clock, so an accelerated lab run expires entries in scenario time) and a
cycle asks at most once per address.

The lookup shares the forward probe's transport (one deadline for the UDP wait and the TCP retry,
stray replies ignored, ICMP refusals reported at once) and its answer rules: only class-IN
records count, a CNAME chain (RFC 2317 classless delegation) is followed to the PTR, and
whatever a peer sends becomes a classified result, never an exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename

from pipeline.probe.dns_answer import other_classes, records_at, walk_chain
from pipeline.probe.dns_exchange import ExchangeError, exchange

# A PTR answer is cached for its TTL, but never longer than a day: a resolver answering with a
# TTL of 2^31 - 1 (68 years; larger ones read as 0 by RFC 2181 §8) must not pin a hostname forever.
MAX_CACHE_TTL = 86400


@dataclass(frozen=True, slots=True)
class RdnsResult:
    address: str
    hostname: str | None
    ttl: int = 0
    error_type: str | None = None
    error_message: str | None = None


class ReverseLookup:
    """PTR lookups through one resolver, with a TTL cache."""

    def __init__(self, server: tuple[str, int], timeout: float,
                 now: Callable[[], float] = time.time, negative_ttl: int = 300) -> None:
        self.server = server
        self.timeout = timeout
        self._now = now
        self._negative_ttl = negative_ttl
        self._cache: dict[str, tuple[float, RdnsResult]] = {}

    async def lookup(self, address: str) -> RdnsResult:
        hit = self._cache.get(address)
        now = self._now()
        if hit and hit[0] > now:
            return hit[1]
        result = await probe_rdns(address, self.server, self.timeout)
        ttl = result.ttl if result.hostname else self._negative_ttl
        self._cache[address] = (now + min(max(ttl, 1), MAX_CACHE_TTL), result)
        return result


async def probe_rdns(address: str, server: tuple[str, int], timeout: float) -> RdnsResult:
    """The PTR name of ``address`` via ``server``; ``timeout`` bounds the whole lookup."""
    try:
        return await _probe_rdns(address, server, timeout)
    except Exception as exc:  # the boundary: a lookup never escapes as an exception
        return RdnsResult(address, None, error_type="dns.unexpected",
                          error_message=f"{type(exc).__name__}: {exc}")


async def _probe_rdns(address: str, server: tuple[str, int], timeout: float) -> RdnsResult:
    try:
        qname = dns.reversename.from_address(address)
    except (ValueError, dns.exception.DNSException) as exc:
        return RdnsResult(address, None, error_type="dns.bad_name",
                          error_message=f"{address!r} is not an IP address: {exc}")
    query = dns.message.make_query(qname, dns.rdatatype.PTR)
    try:
        response = (await exchange(query, server[0], server[1], timeout)).response
    except ExchangeError as exc:
        return RdnsResult(address, None, error_type=exc.error_type, error_message=exc.message)
    except OSError as exc:
        return RdnsResult(address, None, error_type="dns.network", error_message=str(exc))
    return ptr_result(address, response, qname)


def ptr_result(address: str, response: dns.message.Message, qname: dns.name.Name) -> RdnsResult:
    """What a PTR response says about ``address``: a pure function, for any message at all."""
    try:
        return _ptr_result(address, response, qname)
    except Exception as exc:
        return RdnsResult(address, None, error_type="dns.unexpected",
                          error_message=f"{type(exc).__name__}: {exc}")


def _ptr_result(address: str, response: dns.message.Message, qname: dns.name.Name
                ) -> RdnsResult:
    if response.rcode() != dns.rcode.NOERROR:
        rcode = dns.rcode.to_text(response.rcode())
        return RdnsResult(address, None, error_type=f"dns.{rcode.lower()}",
                          error_message=f"{rcode} from resolver")
    chain = walk_chain(response.answer, qname)
    if chain.problem:
        return RdnsResult(address, None, error_type=chain.problem,
                          error_message=f"CNAME chain of {len(chain.names)} names at {chain.owner}")
    for rrset in records_at(response.answer, chain.owner, dns.rdatatype.PTR):
        if len(rrset):
            return RdnsResult(address, rrset[0].target.to_text(omit_final_dot=True), rrset.ttl)
    others = other_classes(response.answer)
    if others:
        return RdnsResult(address, None, error_type="dns.unexpected_class",
                          error_message=f"answer holds only records of class "
                          f"{', '.join(others)}, not IN")
    return RdnsResult(address, None, error_type="dns.nodata", error_message="NOERROR from resolver")
