"""``edgewatch allowlist verify``: a deployed list against the recent window, as text or JSON.

The computation is ``list_coverage``; this module reads the rows once from a source, judges the
coverage against the minimum and renders the answer for a person (text) or a monitoring system
(JSON). The exit status is decided by the caller from ``Verification.ok``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.allowlists.deployed import ListVersion
from pipeline.report.filters import Filters
from pipeline.report.list_coverage import ListCoverage, iso, list_coverage
from pipeline.report.networks import attribute
from pipeline.report.rows import Source
from pipeline.report.verdict import pct

SCHEMA = "edgewatch.allowlist.verify/1"


@dataclass
class Verification:
    min_coverage: float
    start: str | None
    end: str | None
    source: str
    result: ListCoverage

    @property
    def ok(self) -> bool:
        c = self.result.coverage
        return c is not None and c >= self.min_coverage


def verify(source: Source, filters: Filters, lst: ListVersion, min_coverage: float
           ) -> Verification:
    """The coverage of ``lst`` over the selection (``filters.start`` is the window's origin)."""
    span = source.span(filters)
    origin = filters.start or (span.first if span else datetime(1970, 1, 1, tzinfo=UTC))
    rows = list(source.target_address_rows(filters, origin)) if span else []
    missed_ips = {r.ip for r in rows if not lst.allows(r.ip)}
    attribution = {ip: a for ip, a in attribute(source.network_rows(filters)).items()
                   if ip in missed_ips} if missed_ips else {}
    return Verification(min_coverage, iso(filters.start or (span.first if span else None)),
                        iso(filters.end or (span.last if span else None)), source.description,
                        list_coverage(lst, rows, origin, attribution))


def render_text(v: Verification) -> str:
    r = v.result
    minimum = pct(v.min_coverage, 2)
    verdict = f"covered (minimum {minimum})" if v.ok else f"BELOW the minimum {minimum}"
    lines = [
        f"allowlist {r.name} ({r.file}, {r.networks} networks) allowed {pct(r.coverage, 2)} of "
        f"{r.checks:,} successful checks: {verdict}",
        f"window: {v.start} -> {v.end or 'now'}; source: {v.source}",
    ]
    if r.groups:
        rows = [("target", "resolver", "checks", "allowed", "coverage")]
        rows += [(g.target, g.resolver, f"{g.checks:,}", f"{g.allowed:,}", pct(g.coverage, 2))
                 for g in r.groups]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(row, widths,
                                                                         strict=True))))
    if r.missed:
        lines.append(f"{len(r.missed)} address(es) the list misses, first missed first:")
        for m in r.missed:
            net = " ".join(x for x in (m.prefix, f"AS{m.asn}" if m.asn else None) if x)
            lines.append(f"  {m.ip}  since {m.first}  {m.checks:,} checks  {net or '-'}  "
                         f"({'; '.join(m.via)})")
    return "\n".join(lines) + "\n"


def render_json(v: Verification) -> str:
    doc = {"schema": SCHEMA, "ok": v.ok, "min_coverage": v.min_coverage,
           "window": {"start": v.start, "end": v.end}, "source": v.source,
           **dataclasses.asdict(v.result)}
    return json.dumps(doc, indent=2) + "\n"
