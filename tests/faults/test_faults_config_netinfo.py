"""A netinfo table that is not a table is refused with the file and the line, never a traceback
from the first cycle; a good table is parsed once for the start-up check and the cycle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.probe.netinfo import NetinfoError, NetinfoTable

GOOD = b"# ip2asn\n1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n127.60.0.0\t127.60.0.255\t64600\n"


@pytest.mark.parametrize(("content", "line", "reason"), [
    (GOOD + b"\xff\xd8\xff\xe0 JFIF\n", 4, "not UTF-8 text"),
    (GOOD + b"1.0.1.0\x001.0.1.255\x0013335\n", 4, "NUL byte"),
    (b"1.0.0.0 1.0.0.255 13335\n", 1, "at least 3 tab-separated columns"),
    (b"1.0.0.0\t1.0.0.255\t-1\n", 1, "AS number '-1'"),
    (b"1.0.0.0\t1.0.0.255\t\xd9\xa3\n", 1, "is not a non-negative integer"),  # Arabic-Indic 3
    (b"1.0.0.9\t1.0.0.0\t1\n", 1, "range end before start"),
    (b"1.0.0.0\t::1\t1\n", 1, "range end before start"),
    (b"1.0.0.0\tnope\t1\n", 1, "does not appear to be an IPv4 or IPv6 address"),
])
def test_bad_lines_name_file_and_line(tmp_path: Path, content: bytes, line: int,
                                      reason: str) -> None:
    table = tmp_path / "t.tsv"
    table.write_bytes(content)
    with pytest.raises(NetinfoError) as err:
        NetinfoTable.load(table)
    assert str(err.value).startswith(f"{table}:{line}: ") and reason in str(err.value)


def test_missing_or_a_folder(tmp_path: Path) -> None:
    with pytest.raises(NetinfoError, match="cannot read"):
        NetinfoTable.load(tmp_path / "missing.tsv")
    with pytest.raises(NetinfoError, match="cannot read"):
        NetinfoTable.load(tmp_path)


def test_crlf_table_loads_and_is_parsed_once(tmp_path: Path) -> None:
    table = tmp_path / "t.tsv"
    table.write_bytes(GOOD.replace(b"\n", b"\r\n"))
    first = NetinfoTable.load(table)
    assert first.lookup("1.0.0.7").organization == "CLOUDFLARENET"
    assert first.lookup("127.60.0.9").asn == 64600
    assert NetinfoTable.load(table) is first  # the start-up check and the cycle share it
    table.write_bytes(GOOD + b"2.0.0.0\t2.0.0.255\t3215\tFR\tORANGE\n")
    os.utime(table, ns=(1, 2))
    again = NetinfoTable.load(table)
    assert again is not first and again.lookup("2.0.0.1").asn == 3215
