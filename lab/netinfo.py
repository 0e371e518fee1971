"""Network attribution of edge addresses: PTR names and an iptoasn-format table.

edgewatch attributes answer addresses to ASNs and prefixes from an offline table in the public
iptoasn TSV format (range_start, range_end, AS_number, country_code, AS_description; no header).
The lab writes that table from the scenario's [[networks]] so the pipeline's attribution can be
checked against what the scenario meant.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from lab.scenario import Network, Scenario


def ptr_name(network: Network, address: str) -> str:
    """The edge hostname for an address, e.g. a127-60-0-5.deploy.edge.lab.test (IPv6:
    afd00-60--10.deploy.edge.lab.test, the compressed form with ':' as '-')."""
    dashed = address.replace(".", "-").replace(":", "-")
    return network.ptr.format(dashed=dashed, ip=address).strip(".").lower()


def reverse_name(address: str) -> str:
    """5.0.60.127.in-addr.arpa for 127.60.0.5, nibbles under ip6.arpa for IPv6 (no final dot)."""
    return ipaddress.ip_address(address).reverse_pointer


def ptr_map(scenario: Scenario) -> dict[str, str]:
    """reverse name -> PTR target for every address the scenario can hand out."""
    out = {}
    for address in scenario.edge_addresses():
        net = scenario.network_of(address)
        if net is not None:
            out[reverse_name(address)] = ptr_name(net, address)
    return out


def iptoasn_lines(scenario: Scenario) -> list[str]:
    """One TSV line per network prefix, sorted by start address."""
    lines = []
    for net in sorted(scenario.networks,
                      key=lambda n: (n.prefix.version, int(n.prefix.network_address))):
        desc = net.as_name.replace("\t", " ")
        lines.append(
            f"{net.prefix.network_address}\t{net.prefix.broadcast_address}\t{net.asn}\t"
            f"{net.country}\t{desc}"
        )
    return lines


def write_iptoasn(scenario: Scenario, path: Path) -> Path:
    """Write the table (no header) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(iptoasn_lines(scenario)) + "\n")
    return path
