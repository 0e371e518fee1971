from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.probe.netinfo import NetinfoError, NetinfoTable, prefix24


def test_lookup_by_range_with_announced_prefix(tmp_path: Path) -> None:
    table = tmp_path / "ip2asn.tsv"
    table.write_text(
        "127.60.0.0\t127.60.1.255\t64500\tZZ\tLAB-EDGE-A\n"
        "127.61.0.0\t127.61.0.127\t64501\tZZ\tLAB-EDGE-B\n"
        "127.62.0.0\t127.62.0.255\t0\tNone\tNot routed\n"
    )
    t = NetinfoTable.load(table)
    a = t.lookup("127.60.1.7")
    assert (a.asn, a.organization, a.prefix, a.prefix24) == (
        64500, "LAB-EDGE-A", "127.60.0.0/23", "127.60.1.0/24")
    assert t.lookup("127.61.0.5").prefix == "127.61.0.0/25"
    assert t.lookup("127.61.0.200").asn is None
    assert t.lookup("127.62.0.1").asn is None
    assert t.lookup("10.0.0.1").prefix24 == "10.0.0.0/24"
    assert prefix24("2001:db8::1") == "2001:db8::/48"


def test_bad_line_is_named(tmp_path: Path) -> None:
    table = tmp_path / "bad.tsv"
    table.write_text("127.60.0.0\t127.60.1.255\t64500\n127.60.0.0\n")
    with pytest.raises(NetinfoError, match=r"bad\.tsv:2"):
        NetinfoTable.load(table)
