"""Network keys of an address for allowlisting by /24 or by announced prefix.

Documents carry ``destination.prefix24`` and ``destination.prefix``; when a document lacks them
(no netinfo table, old data) the /24 (IPv6: /48) is derived from the address and the announced
prefix falls back to the address alone, so an allowlist never silently widens to a guess.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache


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
