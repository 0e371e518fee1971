"""Reverse DNS of an edge address: the edge hostname names the CDN deployment that served it.

Edge hostnames change far more slowly than the address rotation, so each answer is cached for its
TTL (in the pipeline's clock, so an accelerated lab run expires entries in scenario time) and a
cycle asks at most once per address.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.reversename


@dataclass(frozen=True, slots=True)
class RdnsResult:
    address: str
    hostname: str | None
    ttl: int = 0
    error_type: str | None = None


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
        self._cache[address] = (now + max(ttl, 1), result)
        return result


async def probe_rdns(address: str, server: tuple[str, int], timeout: float) -> RdnsResult:
    qname = dns.reversename.from_address(address)
    query = dns.message.make_query(qname, dns.rdatatype.PTR)
    try:
        response, _ = await dns.asyncquery.udp_with_fallback(
            query, server[0], timeout=timeout, port=server[1]
        )
    except dns.exception.Timeout:
        return RdnsResult(address, None, error_type="dns.timeout")
    except (OSError, dns.exception.DNSException):
        return RdnsResult(address, None, error_type="dns.network")
    if response.rcode() != dns.rcode.NOERROR:
        rcode = dns.rcode.to_text(response.rcode()).lower()
        return RdnsResult(address, None, error_type=f"dns.{rcode}")
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.PTR:
            return RdnsResult(address, rrset[0].target.to_text(omit_final_dot=True), rrset.ttl)
    return RdnsResult(address, None, error_type="dns.nodata")
