"""``edgewatch allowlist``: the smallest list that would have allowed a share of the checks.

The list is written for the tool that enforces it (plain CIDRs, an nftables set, an ipset
restore file, or JSON for automation) and always starts with the evidence behind it: the
window, the selection and the share of successful checks it would have allowed. A list without
its evidence window invites being trusted long after it went stale.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline.report import stats
from pipeline.report.filters import Filters
from pipeline.report.model import DataQuality
from pipeline.report.networks import Attribution, as_network, attribute, host_network
from pipeline.report.rows import Source
from pipeline.report.verdict import NOUNS, nouns_for, pct

FORMATS = ("cidr", "nft", "ipset", "json")
SCHEMA = "edgewatch.allowlist/1"
TABLE, FAMILY = "edgewatch", "inet"  # fixed: no user text reaches these places of the script

# A set name lands unquoted in an nft script and as a word of an ipset restore file. Allowed:
# what nft's scanner reads as one identifier *and* ipset takes as one name, minus the
# characters the tools treat differently ('/', '.', '-'): a letter, then letters, digits and
# '_' — at most 30 so that the 4/6 suffix fits ipset's 31 (IPSET_MAXNAMELEN 32 with the NUL).
# nft keywords a suffix could spell (``ip`` + ``6`` = ``ip6``) are refused too.
SET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,29}")
NFT_WORDS_ENDING_IN_4_OR_6 = frozenset({"ip6", "icmp6", "icmpv6", "ipv4", "ipv6", "inet6"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def check_set_name(name: str) -> None:
    """Raise ValueError unless ``name`` is safe as an nftables and ipset set name."""
    if not SET_NAME.fullmatch(name):
        raise ValueError(f"set name {name!r} is not allowed: use 1-30 characters, a letter "
                         "first, then letters, digits or '_'")
    clash = {name + "4", name + "6"} & NFT_WORDS_ENDING_IN_4_OR_6
    if clash:
        raise ValueError(f"set name {name!r} is not allowed: with its suffix it is the nft "
                         f"keyword {sorted(clash)[0]!r}")


def one_line(text: str) -> str:
    """Text with control characters escaped, so that it cannot leave its ``#`` comment line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


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
    notes: list[str] = field(default_factory=list)  # what the reading left out (DataQuality)

    def header(self) -> list[str]:
        f = [f"{k}={','.join(v)}" for k in ("targets", "observers", "resolvers", "record_types")
             if (v := self.filters.get(k))]
        return [
            f"edgewatch allowlist by {self.by}: {len(self.entries)} "
            f"{nouns_for(c for c, _ in self.entries)[self.by][0 if len(self.entries) == 1 else 1]}"
            " would have allowed "
            f"{pct(self.allowed, 2)} of {self.successful_checks:,} successful checks "
            f"(coverage target {pct(self.target, 2)}; {self.distinct} seen)",
            f"evidence window: {self.start} -> {self.end}",
            f"source: {self.source}" + (f"; selection: {' '.join(f)}" if f else ""),
            f"generated {datetime.now(UTC).isoformat(timespec='seconds').replace('+00:00', 'Z')}"
            "; CDN addresses change: regenerate regularly (see the decay in edgewatch report)",
            *(f"data: {note}" for note in self.notes),
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

    ignored = source.ignored(filters, runs=False) if hasattr(source, "ignored") else (0, 0)
    data = DataQuality(
        plausible_from=iso(filters.not_before), plausible_to=iso(filters.not_after),
        ignored_checks=ignored[0], skipped_lines=getattr(source, "skipped_lines", 0),
        duplicate_lines=getattr(source, "duplicate_lines", 0),
    )
    return Allowlist(
        by=by, target=target, entries=list(ranked.entries[:k]), allowed=ranked.share_of_top(k),
        successful_checks=ranked.total, distinct=len(ranked.entries),
        start=iso(filters.start or (span.first if span else None)),
        end=iso(filters.end or (span.last if span else None)),
        source=source.description, filters=filters.describe(), notes=data.notes(),
    )


def _by_family(al: Allowlist) -> tuple[list[str], list[str]]:
    nets = sorted((as_network(c) for c, _ in al.entries),
                  key=lambda n: (n.version, n.network_address, n.prefixlen))
    return ([str(n) for n in nets if n.version == 4], [str(n) for n in nets if n.version == 6])


def render_allowlist(al: Allowlist, fmt: str, name: str = "edgewatch_allow") -> str:
    """The list in one of ``FORMATS``; every format but JSON starts with ``#`` comments.

    Every word of user text that reaches the firewall syntax is checked (the set name) or
    confined to a comment line (names from the selection, the source)."""
    if fmt in ("nft", "ipset"):
        check_set_name(name)
    comment = "".join(f"# {one_line(line)}\n" for line in al.header())
    v4, v6 = _by_family(al)
    if fmt == "cidr":
        return comment + "".join(f"{n}\n" for n in v4 + v6)
    if fmt == "nft":
        out = [comment, f"table {FAMILY} {TABLE} {{\n"]
        for fam, nets in (("4", v4), ("6", v6)):
            if nets:
                out.append(f"\tset {name}{fam} {{\n\t\ttype ipv{fam}_addr\n"
                           "\t\tflags interval\n\t\telements = {\n")
                out.append(",\n".join(f"\t\t\t{n}" for n in nets) + "\n\t\t}\n\t}\n")
        out.append("}\n")
        return "".join(out)
    if fmt == "ipset":
        set_name = name.replace("_", "-")
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
