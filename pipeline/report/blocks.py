"""Blocks and their cost (issue 15, item 3): what allowlisting networks instead of addresses opens.

For each coverage level the report computes by /24 and by announced prefix (the smallest set of
blocks letting through 50/90/99/99.9% of successful checks), and for whole ASNs (every announced
range of every ASN the used addresses belong to, summed from the netinfo table): the number of
addresses the blocks open, the addresses actually used inside them (distinct addresses with a
successful check), and the ratio opened / used. Few wide blocks or many narrow ones, in numbers.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.report.model import Coverage
from pipeline.report.networks import Attribution


@dataclass
class BlockLevel:
    by: str  # "prefix24", "prefix" or "asn"
    target: float | None  # the coverage level, None for "all ASNs seen"
    blocks: int
    allowed: float | None  # share of successful checks the blocks let through
    opened: int  # addresses inside the blocks
    used: int  # distinct used addresses inside them
    ratio: float | None  # opened / used


def asn_space(table: Path | None) -> dict[int, int]:
    """Addresses announced per ASN in an ip-to-ASN TSV table (range_start, range_end, AS, …).

    Lines that are not such a row are skipped: the pipeline validates the table when it runs;
    here it only prices what it announces. No table: no ASN figures.
    """
    out: Counter = Counter()
    if table is None or not table.is_file():
        return {}
    with table.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) < 3 or line.startswith("#"):
                continue
            try:
                lo, hi = ipaddress.ip_address(parts[0]), ipaddress.ip_address(parts[1])
                asn = int(parts[2])
            except ValueError:
                continue
            if asn and hi >= lo:
                out[asn] += int(hi) - int(lo) + 1
    return dict(out)


def _size(key: str) -> int:
    return ipaddress.ip_network(key, strict=False).num_addresses


def block_costs(coverage: Iterable[Coverage], attr: dict[str, Attribution],
                space: dict[int, int]) -> list[BlockLevel]:
    by = {c.by: c for c in coverage}
    used = [ip for ip, n in by["ip"].ranked if n > 0] if "ip" in by else []
    out = []
    for g, key_of in (("prefix24", lambda a: a.prefix24), ("prefix", lambda a: a.prefix)):
        cov = by.get(g)
        if cov is None:
            continue
        for level in cov.levels:
            chosen = {k for k, _ in cov.ranked[:level.entries]}
            inside = sum(1 for ip in used if key_of(attr[ip]) in chosen)
            opened = sum(_size(k) for k in chosen)
            out.append(BlockLevel(g, level.target, len(chosen), level.allowed, opened, inside,
                                  opened / inside if inside else None))
    asns = {attr[ip].asn for ip in used if attr[ip].asn is not None}
    if asns and space:
        opened = sum(space.get(a, 0) for a in asns)
        inside = sum(1 for ip in used if attr[ip].asn in asns)
        total = by["ip"].successful_checks if "ip" in by else 0
        ok = sum(n for ip, n in by["ip"].ranked if attr[ip].asn in asns) if total else 0
        out.append(BlockLevel("asn", None, len(asns), ok / total if total else None, opened,
                              inside, opened / inside if inside else None))
    return out
