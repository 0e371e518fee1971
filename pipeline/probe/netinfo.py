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
    """The table has a line that is not in the documented format."""


def prefix24(address: str) -> str:
    """The /24 of an IPv4 address (the /48 of an IPv6 one): the unit firewall teams often use."""
    ip = ipaddress.ip_address(address)
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


class NetinfoTable:
    def __init__(self, rows: list[tuple[IPAddress, IPAddress, int, str, str]]) -> None:
        rows.sort(key=lambda r: (r[0].version, int(r[0])))
        self._rows = rows
        self._keys = [(r[0].version, int(r[0])) for r in rows]

    @classmethod
    def load(cls, path: Path) -> NetinfoTable:
        rows = []
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip() or line.startswith("#"):
                    continue
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 3:
                    raise NetinfoError(f"{path}:{lineno}: expected at least 3 tab-separated "
                                       "columns (range_start, range_end, AS_number)")
                try:
                    lo, hi = ipaddress.ip_address(parts[0]), ipaddress.ip_address(parts[1])
                    asn = int(parts[2])
                except ValueError as exc:
                    raise NetinfoError(f"{path}:{lineno}: {exc}") from exc
                if lo.version != hi.version or hi < lo:
                    raise NetinfoError(f"{path}:{lineno}: range end before start")
                country = parts[3] if len(parts) > 3 else ""
                org = parts[4] if len(parts) > 4 else ""
                rows.append((lo, hi, asn, country, org))
        return cls(rows)

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
