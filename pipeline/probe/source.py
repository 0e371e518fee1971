"""Where a probe's packets leave from: ``[probe] source_address``.

A probe host with several addresses (or several probes on one host standing for several places)
must send from a chosen one, because resolvers answer by who asks: views by source address, and
resolvers that pass the client's subnet on as EDNS Client Subnet. The address applies to every
DNS query and edge connection of its family; a peer of the other family is reached from the
system's choice, since no IPv4 address can send to an IPv6 peer.
"""

from __future__ import annotations

import ipaddress


def local_addr(source: str | None, remote: str) -> tuple[str, int] | None:
    """``(source, 0)`` to bind before reaching ``remote``, or None (the system chooses)."""
    if source is None:
        return None
    try:
        same = ipaddress.ip_address(source).version == ipaddress.ip_address(remote).version
    except ValueError:  # a host name (DoH URL): bind only when the family is known
        return None
    return (source, 0) if same else None
