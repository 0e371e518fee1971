"""``edgewatch allowlist``: the smallest list that would have allowed a share of the checks.

The list is written for the tool that enforces it (plain CIDRs, an nftables set, an ipset
restore file, or JSON for automation) and always starts with the evidence behind it: the
window, the selection and the share of successful checks it would have allowed. A list without
its evidence window invites being trusted long after it went stale.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.report import stats
from pipeline.report.filters import Filters
from pipeline.report.networks import Attribution, as_network, attribute, host_network
from pipeline.report.rows import Source
from pipeline.report.verdict import NOUNS, pct

FORMATS = ("cidr", "nft", "ipset", "json")
SCHEMA = "edgewatch.allowlist/1"


@dataclass
class Allowlist:
    by: str
    target: float
    entries: list[tuple[str, int]]  # (cidr, successful checks it allowed), most used first
    allowed: float
    successful_checks: int
    distinct: int
    start: str | None
    end: str | None
    source: str
    filters: dict[str, object]

    def header(self) -> list[str]:
        f = [f"{k}={','.join(v)}" for k in ("targets", "observers", "resolvers")
             if (v := self.filters.get(k))]
        return [
            f"edgewatch allowlist by {self.by}: {len(self.entries)} "
            f"{NOUNS[self.by][0 if len(self.entries) == 1 else 1]} would have allowed "
            f"{pct(self.allowed, 2)} of {self.successful_checks:,} successful checks "
            f"(coverage target {pct(self.target, 2)}; {self.distinct} seen)",
            f"evidence window: {self.start} -> {self.end}",
            f"source: {self.source}" + (f"; selection: {' '.join(f)}" if f else ""),
            f"generated {datetime.now(UTC).isoformat(timespec='seconds').replace('+00:00', 'Z')}"
            "; CDN addresses change: regenerate regularly (see the decay in edgewatch report)",
        ]


def _key(by: str, ip: str, a: Attribution) -> str:
    if by == "ip":
        return host_network(ip)
    return str(as_network(a.prefix24 if by == "prefix24" else a.prefix))


def build_allowlist(source: Source, filters: Filters, target: float, by: str) -> Allowlist:
    """Greedy by successful checks (optimal: every check has exactly one address)."""
    if by not in NOUNS:
        raise ValueError(f"by must be one of {tuple(NOUNS)}")
    span = source.span(filters)
    counts: Counter = Counter()
    if span is not None:
        origin = filters.start or span.first
        attr = attribute(source.network_rows(filters)) if by != "ip" else {}
        for row in source.address_rows(filters, origin):
            if row.ok:
                a = attr.get(row.ip) or Attribution.unknown(row.ip)
                counts[_key(by, row.ip, a)] += row.ok
    ranked = stats.rank(counts)
    k = ranked.smallest_for(target)

    def iso(ts: datetime | None) -> str | None:
        return None if ts is None else ts.astimezone(UTC).isoformat(
            timespec="seconds").replace("+00:00", "Z")

    return Allowlist(
        by=by, target=target, entries=list(ranked.entries[:k]), allowed=ranked.share_of_top(k),
        successful_checks=ranked.total, distinct=len(ranked.entries),
        start=iso(filters.start or (span.first if span else None)),
        end=iso(filters.end or (span.last if span else None)),
        source=source.description, filters=filters.describe(),
    )


def _by_family(al: Allowlist) -> tuple[list[str], list[str]]:
    nets = sorted((as_network(c) for c, _ in al.entries),
                  key=lambda n: (n.version, n.network_address, n.prefixlen))
    return ([str(n) for n in nets if n.version == 4], [str(n) for n in nets if n.version == 6])


def render_allowlist(al: Allowlist, fmt: str, name: str = "edgewatch_allow") -> str:
    """The list in one of ``FORMATS``; every format but JSON starts with ``#`` comments."""
    comment = "".join(f"# {line}\n" for line in al.header())
    v4, v6 = _by_family(al)
    if fmt == "cidr":
        return comment + "".join(f"{n}\n" for n in v4 + v6)
    if fmt == "nft":
        out = [comment, "table inet edgewatch {\n"]
        for fam, nets in (("4", v4), ("6", v6)):
            if nets:
                out.append(f"\tset {name}{fam} {{\n\t\ttype ipv{fam}_addr\n"
                           "\t\tflags interval\n\t\telements = {\n")
                out.append(",\n".join(f"\t\t\t{n}" for n in nets) + "\n\t\t}\n\t}\n")
        out.append("}\n")
        return "".join(out)
    if fmt == "ipset":
        set_name = name.replace("_", "-")[:29]
        out = [comment]
        for fam, family, nets in (("4", "inet", v4), ("6", "inet6", v6)):
            if nets:
                out.append(f"create {set_name}{fam} hash:net family {family} -exist\n")
                out += [f"add {set_name}{fam} {n} -exist\n" for n in nets]
        return "".join(out)
    if fmt == "json":
        doc = {
            "schema": SCHEMA, "by": al.by, "coverage_target": al.target,
            "allowed": round(al.allowed, 6), "successful_checks": al.successful_checks,
            "distinct": al.distinct, "window": {"start": al.start, "end": al.end},
            "source": al.source, "filters": al.filters, "comment": al.header(),
            "entries": [{"cidr": c, "checks": n,
                         "share": round(n / al.successful_checks, 6)} for c, n in al.entries],
        }
        return json.dumps(doc, indent=2) + "\n"
    raise ValueError(f"format must be one of {FORMATS}")
