"""Network attribution of an address, for counting networks and allowlisting by /24 or prefix.

Documents carry ``edgewatch.destination.prefix24``, ``edgewatch.destination.prefix``,
``destination.as.number`` and
``destination.domain``. Attribution belongs to the address: should it differ between documents
(a re-announced prefix, a flapping PTR), the attribution seen in most documents wins (ties: the
first in sort order) and every edge hostname is kept. When documents lack them (no netinfo
table, old data) the /24 (IPv6: /48) is derived from the address and the announced prefix falls
back to the address alone, so an allowlist never silently widens to a guess.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pipeline.report.rows import NetworkRow


@lru_cache(maxsize=65536)
def derived_prefix24(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    bits = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


@lru_cache(maxsize=65536)
def host_network(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    return f"{addr}/{addr.max_prefixlen}"


def as_network(key: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An allowlist entry (address or CIDR) as a network, for sorting and the output formats."""
    return ipaddress.ip_network(key if "/" in key else host_network(key), strict=False)


@dataclass(frozen=True)
class Attribution:
    prefix24: str
    prefix: str  # the announced prefix, or the host network when unknown
    prefix_known: bool
    asn: int | None
    domains: tuple[str, ...]

    @classmethod
    def unknown(cls, ip: str) -> Attribution:
        return cls(derived_prefix24(ip), host_network(ip), False, None, ())


def attribute(rows: Iterable[NetworkRow]) -> dict[str, Attribution]:
    """One attribution per address from the grouped network rows of any source."""
    votes: dict[str, Counter] = defaultdict(Counter)
    domains: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        votes[r.ip][(r.prefix24, r.prefix, r.asn)] += r.documents
        if r.domain:
            domains[r.ip].add(r.domain)
    out = {}
    for ip, counter in votes.items():
        (p24, prefix, asn), _ = min(counter.items(), key=lambda kv: (-kv[1], repr(kv[0])))
        out[ip] = Attribution(
            prefix24=p24 or derived_prefix24(ip), prefix=prefix or host_network(ip),
            prefix_known=prefix is not None, asn=asn, domains=tuple(sorted(domains[ip])))
    return out
