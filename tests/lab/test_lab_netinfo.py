"""The iptoasn table and PTR names the lab derives from a scenario."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from lab.netinfo import iptoasn_lines, ptr_name, write_iptoasn
from lab.scenario import load_scenario


def test_iptoasn_format_covers_every_edge(tmp_path: Path) -> None:
    s = load_scenario("study-14d")
    path = write_iptoasn(s, tmp_path / "ip2asn.tsv")
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    assert rows and all(len(r) == 5 for r in rows)
    assert rows[0][0] != "range_start"  # no header
    ranges = [(int(ipaddress.IPv4Address(a)), int(ipaddress.IPv4Address(b)), int(asn))
              for a, b, asn, _cc, _desc in rows]
    assert ranges == sorted(ranges)
    for address in s.edge_addresses():
        n = int(ipaddress.IPv4Address(address))
        hits = [asn for lo, hi, asn in ranges if lo <= n <= hi]
        assert hits == [s.network_of(address).asn]
    assert len({r[2] for r in rows}) >= 4
    first = "127.60.0.0\t127.60.0.255\t64600\tUS\tLAB-EDGE-1 - Lab Edge Americas"
    assert iptoasn_lines(s)[0] == first


def test_ptr_names() -> None:
    s = load_scenario("quick")
    net = s.network_of("127.60.0.5")
    assert ptr_name(net, "127.60.0.5") == "a127-60-0-5.deploy.edge.lab.test"
