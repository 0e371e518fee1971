"""The evidence a report is computed from: the source's grouped rows, folded per resolver.

``build`` turns this into figures; this module only reads. It asks the source for each kind of
row once, in a fixed order, and keeps one accumulator per resolver plus one for all of them
(``ALL``), so every figure of a resolver and of the whole is computed from the same fold.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from pipeline.report.filters import Filters
from pipeline.report.model import ALL, GRANULARITIES, Networks
from pipeline.report.networks import Attribution, attribute
from pipeline.report.parallel import read_all
from pipeline.report.rows import DAY_S, AddressRow, OutcomeRow, Source
from pipeline.report.run_stats import GAP_SAMPLE, RunStats, fold_into

TIMING_BUCKET_US = 100


@dataclass
class Addresses:
    """Check-document figures of one resolver (or all)."""

    days: int
    ok_by_ip: Counter = field(default_factory=Counter)
    daily: list[set[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.daily = [set() for _ in range(self.days)]

    def networks(self, attr: dict[str, Attribution]) -> Networks:
        mine = [attr[ip] for ip in self.ok_by_ip]
        return Networks(
            addresses=len(mine),
            prefix24s=len({a.prefix24 for a in mine}),
            prefixes=len({a.prefix for a in mine if a.prefix_known}),
            asns=len({a.asn for a in mine if a.asn is not None}),
            edge_hostnames=sorted({d for a in mine for d in a.domains}),
        )


@dataclass
class Outcomes:
    documents: int = 0
    successful: int = 0
    queries: Fraction = Fraction(0)
    address_checks: int = 0
    address_failures: int = 0
    dns_failures: int = 0
    by_kind: Counter = field(default_factory=Counter)

    def add(self, o: OutcomeRow) -> None:
        """Count one outcome row: a DNS-level failure is one query; an address check is one
        of the ``answer_count`` checks that one query's answer led to."""
        dns_level = bool(o.error_type and o.error_type.startswith("dns."))
        self.documents += o.documents
        if o.outcome == "success":
            self.successful += o.documents
        if dns_level:
            self.queries += o.documents
            self.dns_failures += o.documents
        else:
            self.queries += Fraction(o.documents, max(1, o.answer_count or 1))
            self.address_checks += o.documents
            if o.outcome != "success":
                self.address_failures += o.documents
        if o.error_type:
            self.by_kind[o.error_type] += o.documents


@dataclass(frozen=True)
class Extent:
    """The window the report covers, and how many whole days of evidence it holds."""

    start: datetime
    end: datetime
    last: datetime
    origin: datetime
    days: int


@dataclass
class Evidence:
    """Everything read from the source, folded per resolver and for all of them (``ALL``)."""

    days: int
    attr: dict[str, Attribution]
    addresses: dict[str, Addresses]
    daily_ok: dict[str, list[Counter]]
    outcomes: dict[str, Outcomes]
    timings: dict[tuple[str, str], Counter]
    runs: dict[str, RunStats]
    interval: tuple[float | None, str]  # the sampling interval and where it came from


def _span_origin(source: Source, filters: Filters) -> tuple[datetime, datetime, datetime] | None:
    span = source.span(filters)
    if span is None:
        return None
    start = filters.start or span.first.replace(microsecond=0)
    end = filters.end or span.last
    return start, end, span.last


def extent_of(source: Source, filters: Filters) -> Extent:
    bounds = _span_origin(source, filters)
    if bounds is None:
        origin = filters.start or datetime.now(UTC)
        return Extent(origin, filters.end or origin, origin, origin, 0)
    start, end, last = bounds
    days = int((min(last, end) - start).total_seconds() // DAY_S) + 1
    return Extent(start, end, last, start, days)


def sampling_interval(source: Source, filters: Filters,
                      given: float | None) -> tuple[float | None, str]:
    """The sampling interval: given, or the median gap between a closed run's last sighting
    and the check that ended it (end − last_seen), which is one interval when no query
    failed; from the ``GAP_SAMPLE`` closed runs with the smallest ids (all of them in
    smaller histories)."""
    if given:
        return given, "given"
    gaps = [g for g in source.run_gaps(filters, GAP_SAMPLE) if g > 0]
    value = statistics.median(gaps) if gaps else None
    return (float(value), "inferred from runs") if value else (None, "unknown")


def read(source: Source, filters: Filters, span: Extent,
         interval_s: float | None = None) -> Evidence:
    """Read the check documents (by address, by outcome, by timing) and the runs.

    Runs arrive grouped (``run_stats``): lengths rounded to the sampling interval (1 s when it
    is unknown: lengths are whole seconds, so nothing is rounded) and totals per address."""
    days = span.days
    jobs: dict[str, Callable[[], Any]] = {
        "interval": lambda: sampling_interval(source, filters, interval_s),
        "run_addresses": lambda: list(source.run_address_rows(filters))}
    if days:
        jobs |= {"addresses": lambda: list(source.address_rows(filters, span.origin)),
                 "networks": lambda: list(source.network_rows(filters)),
                 "outcomes": lambda: list(source.outcome_rows(filters)),
                 "timings": lambda: list(source.timing_rows(filters, TIMING_BUCKET_US))}
    got = read_all(source, jobs)
    ev = Evidence(days=days,
                   attr=attribute(got["networks"]) if days else {},
                   addresses=defaultdict(lambda: Addresses(days)),
                   daily_ok={g: [Counter() for _ in range(days)] for g in GRANULARITIES},
                   outcomes=defaultdict(Outcomes), timings=defaultdict(Counter),
                   runs={}, interval=got["interval"])
    if days:
        _fold_addresses(ev, got["addresses"])
        for o in got["outcomes"]:
            ev.outcomes[o.resolver].add(o)
            ev.outcomes[ALL].add(o)
        for t in got["timings"]:
            for name in (t.resolver, ALL):
                ev.timings[(name, t.field)][t.bucket_us] += t.documents
    bucket = ev.interval[0] or 1.0
    fold_into(ev.runs, ALL, source.run_length_rows(filters, bucket), got["run_addresses"])
    return ev


def _fold_addresses(ev: Evidence, rows: list[AddressRow]) -> None:
    """Fold the (day, resolver, address) rows into each resolver's ``Addresses``, the whole's,
    and the daily successes by address, /24 and prefix.

    The rows outnumber what they fold into (10M checks: 154,000 rows a build into 20 resolvers
    × ~500 addresses × 15 days), so each row costs three dict updates here and the whole, the
    attributions and the /24 and prefix counts are derived from the folded figures afterwards:
    a fold of each row into both accumulators and all three granularities took 3× longer, the
    client's largest share of a report (that one-row fold is the oracle of
    tests/report/test_report_address_fold.py)."""
    days = ev.days
    ok_by: dict[str, dict[str, int]] = {}
    daily_by: dict[str, list[set[str]]] = {}
    day_ok: list[dict[str, int]] = [{} for _ in range(days)]
    for row in rows:
        resolver, ip, day, ok = row.resolver, row.ip, row.day, row.ok
        by_ip = ok_by.get(resolver)
        if by_ip is None:
            by_ip = ok_by[resolver] = {}
            daily_by[resolver] = [set() for _ in range(days)]
        by_ip[ip] = by_ip.get(ip, 0) + ok
        if 0 <= day < days:
            daily_by[resolver][day].add(ip)
            if ok:
                seen = day_ok[day]
                seen[ip] = seen.get(ip, 0) + ok
    if ok_by:
        _settle_addresses(ev, ok_by, daily_by, day_ok)


def _settle_addresses(ev: Evidence, ok_by: dict[str, dict[str, int]],
                      daily_by: dict[str, list[set[str]]], day_ok: list[dict[str, int]]) -> None:
    """The folded figures into ``ev``: per resolver, the whole, unknown attributions, and the
    daily successes of each granularity (a /24 or prefix counts the successes of its
    addresses)."""
    whole = Addresses(ev.days)
    for resolver, by_ip in ok_by.items():
        acc = ev.addresses[resolver]
        acc.ok_by_ip.update(by_ip)
        acc.daily = daily_by[resolver]
        whole.ok_by_ip.update(by_ip)
        for day, ips in enumerate(acc.daily):
            whole.daily[day] |= ips
    ev.addresses[ALL] = whole
    for ip in whole.ok_by_ip:
        if ip not in ev.attr:
            ev.attr[ip] = Attribution.unknown(ip)
    for day, by_ip in enumerate(day_ok):
        ev.daily_ok["ip"][day].update(by_ip)
        for g in ("prefix24", "prefix"):
            out = ev.daily_ok[g][day]
            for ip, n in by_ip.items():
                out[getattr(ev.attr[ip], g)] += n
