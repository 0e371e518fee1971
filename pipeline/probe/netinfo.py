"""Which network an address belongs to, from an offline table (no lookups leave the machine).

The table is the public ip-to-ASN TSV format: ``range_start  range_end  AS_number  country
AS_description`` one range per line (AS 0 = not routed). A range is split into the CIDR blocks
that make it up, and the block containing the address is reported as the announced prefix; the
allowlist question is answered per prefix as well as per address.
"""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import dataclass
from pathlib import Path

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class NetInfo:
    address: str
    asn: int | None
    organization: str | None
    prefix: str | None
    prefix24: str


class NetinfoError(ValueError):
    """The table cannot be read or has a line that is not in the documented format."""


_LOADED: dict[tuple[str, int, int], NetinfoTable] = {}


def prefix24(address: str) -> str:
    """The /24 of an IPv4 address (the /48 of an IPv6 one): the unit firewall teams often use."""
    ip = ipaddress.ip_address(address)
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def _parse_line(path: Path, lineno: int, raw: bytes
                ) -> tuple[IPAddress, IPAddress, int, str, str] | None:
    """One row of the table, None for a blank or comment line, NetinfoError for anything else."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NetinfoError(f"{path}:{lineno}: not UTF-8 text (is this an ip-to-ASN TSV "
                           "table?)") from None
    if not line.strip() or line.startswith("#"):
        return None
    if "\0" in line:
        raise NetinfoError(f"{path}:{lineno}: binary data (NUL byte) in a text table")
    parts = line.rstrip("\r\n").split("\t")
    if len(parts) < 3:
        raise NetinfoError(f"{path}:{lineno}: expected at least 3 tab-separated columns "
                           "(range_start, range_end, AS_number)")
    try:
        lo, hi = ipaddress.ip_address(parts[0]), ipaddress.ip_address(parts[1])
    except ValueError as exc:
        raise NetinfoError(f"{path}:{lineno}: {exc}") from exc
    if not parts[2].isascii() or not parts[2].isdigit():
        raise NetinfoError(f"{path}:{lineno}: AS number {parts[2][:20]!r} is not a "
                           "non-negative integer")
    if lo.version != hi.version or hi < lo:
        raise NetinfoError(f"{path}:{lineno}: range end before start")
    country = parts[3] if len(parts) > 3 else ""
    org = parts[4] if len(parts) > 4 else ""
    return lo, hi, int(parts[2]), country, org


class NetinfoTable:
    def __init__(self, rows: list[tuple[IPAddress, IPAddress, int, str, str]]) -> None:
        rows.sort(key=lambda r: (r[0].version, int(r[0])))
        self._rows = rows
        self._keys = [(r[0].version, int(r[0])) for r in rows]

    @classmethod
    def load(cls, path: Path) -> NetinfoTable:
        """Parse the table; NetinfoError names the file and the line of the first bad one.

        The file is read as bytes and decoded line by line so that binary junk is reported at
        its line, not as a decoding error of some buffer. A table loaded once is kept (keyed by
        path, size and modification time): the start-up check and the cycle share one parse.
        """
        try:
            st = Path(path).stat()
            key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
        except OSError as exc:
            raise NetinfoError(f"{path}: cannot read: {exc.strerror}") from exc
        cached = _LOADED.get(key)
        if cached is not None:
            return cached
        rows = []
        try:
            with open(path, "rb") as fh:
                for lineno, raw in enumerate(fh, 1):
                    row = _parse_line(path, lineno, raw)
                    if row is not None:
                        rows.append(row)
        except OSError as exc:
            raise NetinfoError(f"{path}: cannot read: {exc.strerror}") from exc
        table = cls(rows)
        _LOADED.clear()  # one table per process is the use; do not pin old ones in memory
        _LOADED[key] = table
        return table

    def lookup(self, address: str) -> NetInfo:
        ip = ipaddress.ip_address(address)
        i = bisect.bisect_right(self._keys, (ip.version, int(ip))) - 1
        if i >= 0:
            lo, hi, asn, _country, org = self._rows[i]
            if lo.version == ip.version and lo <= ip <= hi and asn != 0:
                prefix = next(
                    str(net) for net in ipaddress.summarize_address_range(lo, hi) if ip in net
                )
                return NetInfo(address, asn, org or None, prefix, prefix24(address))
        return NetInfo(address, None, None, None, prefix24(address))
