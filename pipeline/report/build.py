"""``build_report(source, filters) -> Report``: stored evidence in, every figure out.

The sources hand over grouped counts (see ``rows``); this module folds them into per-resolver
and overall accumulators and asks ``stats`` for the estimates. Nothing here knows whether the
rows came from Elasticsearch or the ndjson store, which is what lets the tests demand identical
reports from both.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.allowlists.deployed import ListVersion
from pipeline.report import stats
from pipeline.report.afterlife import afterlife_section
from pipeline.report.blocks import asn_space, block_costs
from pipeline.report.evidence import Addresses, Evidence, Extent, Outcomes, extent_of, read
from pipeline.report.filters import Filters
from pipeline.report.list_coverage import ListCoverage, list_coverage
from pipeline.report.model import (
    ALL,
    GRANULARITIES,
    Coverage,
    CoverageLevel,
    DataQuality,
    Decay,
    DecayRow,
    FailureRate,
    Figures,
    Report,
    RunLength,
    StableAddress,
    Timing,
    Window,
)
from pipeline.report.networks import Attribution
from pipeline.report.observers import observer_section
from pipeline.report.plausible import plausible
from pipeline.report.rows import TIMING_FIELDS, Source
from pipeline.report.run_stats import RunStats
from pipeline.report.verdict import make_verdict

COVERAGE_TARGETS = (0.5, 0.9, 0.99, 0.999)
STABLE_TOP = 10
CURVE_POINTS = 300


@dataclass(frozen=True)
class Options:
    """Knobs of the analysis (not of the selection, which is ``Filters``)."""

    interval_s: float | None = None  # sampling interval; inferred from the runs when None
    now: datetime | None = None  # what "now" is for the plausible window (default: wall clock)
    threshold: float = 0.99  # a decaying allowlist is "stale" below this share
    coverage_targets: tuple[float, ...] = COVERAGE_TARGETS
    stable_top: int = STABLE_TOP
    netinfo_table: Path | None = None  # prices whole ASNs in the blocks section
    allowlists: tuple[ListVersion, ...] = ()  # deployed lists: a section each


def _figures(name: str, ev: Evidence, interval_s: float | None, window_s: float,
             resolvers: int, options: Options) -> Figures:
    """One resolver's figures (or all resolvers' when ``name`` is ``ALL``)."""
    acc = ev.addresses.get(name) or Addresses(ev.days)
    out = ev.outcomes.get(name) or Outcomes()
    runs = ev.runs.get(name) or RunStats()
    return Figures(
        name=name,
        documents=out.documents,
        successful=out.successful,
        queries=round(out.queries),
        networks=acc.networks(ev.attr),
        run_length=_run_length(runs, interval_s),
        failures=_failures(out),
        timings=[_timing(f, ev.timings.get((name, f), Counter())) for f in TIMING_FIELDS],
        stable=_stable(runs, acc.ok_by_ip, ev.attr, window_s, resolvers, options.stable_top),
        daily_addresses=[len(d) for d in acc.daily],
    )


def _window(span: Extent, filters: Filters, interval: tuple[float | None, str]) -> Window:
    days = span.days
    return Window(
        start=_iso(span.start) if days else _iso(filters.start),
        end=_iso(span.end) if days else _iso(filters.end),
        origin=_iso(span.origin) if days else None,
        days=days,
        seconds=max(0.0, (span.end - span.start).total_seconds()),
        interval_s=interval[0],
        interval_source=interval[1],
    )


def _data_quality(source: Source, filters: Filters) -> DataQuality:
    ignored = source.ignored(filters) if hasattr(source, "ignored") else (0, 0)
    return DataQuality(
        plausible_from=_iso(filters.not_before), plausible_to=_iso(filters.not_after),
        ignored_checks=ignored[0], ignored_runs=ignored[1],
        skipped_lines=getattr(source, "skipped_lines", 0),
        duplicate_lines=getattr(source, "duplicate_lines", 0),
    )


def build_report(source: Source, filters: Filters | None = None,
                 options: Options | None = None) -> Report:
    """Read the selected evidence from ``source`` and compute the whole report."""
    asked = filters or Filters()
    options = options or Options()
    filters = plausible(asked, options.now)
    span = extent_of(source, filters)
    ev = read(source, filters, span, options.interval_s)
    interval = ev.interval
    window_s = max(0.0, (span.end - span.start).total_seconds())
    names = sorted((set(ev.addresses) | set(ev.outcomes) | set(ev.runs)) - {ALL})
    coverage = [_coverage(g, ev.daily_ok[g], ev.attr, options.coverage_targets)
                for g in GRANULARITIES]
    decay = [_decay(g, ev.daily_ok[g], options.threshold) for g in GRANULARITIES]
    overall = _figures(ALL, ev, interval[0], window_s, len(names), options)
    window = _window(span, filters, interval)
    data = _data_quality(source, filters)
    return Report(
        generated_at=_iso(datetime.now(UTC)),
        source=source.description,
        filters=asked.describe(),
        window=window,
        overall=overall,
        resolvers=[_figures(n, ev, interval[0], window_s, 1, options) for n in names],
        coverage=coverage,
        decay=decay,
        verdict=make_verdict(window, overall, coverage, decay, options.threshold),
        data=data,
        blocks=block_costs(coverage, ev.attr, asn_space(options.netinfo_table)),
        allowlists=_allowlists(source, filters, span, ev, options.allowlists),
        afterlife=afterlife_section(source.afterlife_rows(filters))
        if hasattr(source, "afterlife_rows") else [],
        observers=observer_section(source, filters) if span.days else [],
    )


def _allowlists(source: Source, filters: Filters, span: Extent, ev: Evidence,
                lists: tuple[ListVersion, ...]) -> list[ListCoverage]:
    """Each deployed list against the window, from one read of the rows they share."""
    if not lists or not span.days:
        return []
    rows = list(source.target_address_rows(filters, span.origin))
    return [list_coverage(lst, rows, span.origin, ev.attr) for lst in lists]


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _run_length(runs: RunStats, interval_s: float | None) -> RunLength:
    """Kaplan–Meier over run lengths as sampled: closed runs end at ``end − start``, open runs
    are censored at ``last_seen − start``; each length rounded to the nearest multiple of the
    sampling interval (``run_stats``: the source groups them so).

    Sampling blurs both ends of a run by up to one interval each (it began after the previous
    check that lacked it, it ended after its last sighting), so a closed run's true length lies
    within ``end − start ± interval``, and an open run's start is blurred the same way. Shifting
    every length by the same amount shifts the estimate by exactly that amount, hence the
    bounds ``quantile ± interval``. (Moving event and censoring times independently to their
    extremes is no bound at all: Kaplan–Meier is not monotone when events cross censored
    times.)"""
    km = stats.kaplan_meier_counts(runs.closed, runs.censored)
    margin = interval_s or 0.0

    def q(p: float) -> tuple[float | None, list[float | None]]:
        value = None if km is None else km.quantile(p)
        if value is None:
            return None, [None, None]
        return value, [max(0.0, value - margin), value + margin]

    curve = [[0.0, 1.0]]
    if km is not None:
        curve += [[t, s] for t, s in zip(km.times, km.survival, strict=True)]
    median, median_bounds = q(0.5)
    p90, p90_bounds = q(0.9)
    closed, still_open = sum(runs.closed.values()), sum(runs.censored.values())
    return RunLength(runs=closed + still_open, closed=closed, open=still_open,
                     median_s=median, median_bounds_s=median_bounds,
                     p90_s=p90, p90_bounds_s=p90_bounds, curve=curve)


def _rate(kind: str, unit: str, failures: int, trials: int) -> FailureRate:
    ci = stats.wilson(failures, trials)
    return FailureRate(kind=kind, unit=unit, failures=failures, trials=trials,
                       rate=failures / trials if trials else None,
                       ci95=list(ci) if ci else None)


def _failures(out: Outcomes) -> list[FailureRate]:
    """DNS errors per query asked; connect/TLS/HTTP errors per address checked."""
    queries = round(out.queries)
    rows = [_rate("dns (any)", "query", out.dns_failures, queries),
            _rate("address check (any)", "address check", out.address_failures,
                  out.address_checks)]
    for kind in sorted(out.by_kind):
        if kind.startswith("dns."):
            rows.append(_rate(kind, "query", out.by_kind[kind], queries))
        else:
            rows.append(_rate(kind, "address check", out.by_kind[kind], out.address_checks))
    return rows


def _timing(name: str, buckets: Counter) -> Timing:
    def ms(p: float) -> float | None:
        v = stats.histogram_percentile(buckets, p)
        return None if v is None else v / 1000.0

    return Timing(field=name, count=sum(buckets.values()), p50_ms=ms(0.5), p90_ms=ms(0.9),
                  p99_ms=ms(0.99))


def _stable(runs: RunStats, ok_by_ip: Counter, attr: dict[str, Attribution],
            window_s: float, resolvers: int, top: int) -> list[StableAddress]:
    """Longest total presence first, then fewest runs: the addresses a static list would keep."""
    count, presence, seen_by = runs.count, runs.presence, runs.seen_by
    ips = set(ok_by_ip) | set(count)
    ranked = sorted(ips, key=lambda ip: (-presence[ip], count[ip], ip))[:top]
    out = []
    for ip in ranked:
        a = attr.get(ip) or Attribution.unknown(ip)
        out.append(StableAddress(
            ip=ip, prefix24=a.prefix24, prefix=a.prefix if a.prefix_known else None, asn=a.asn,
            resolvers=len(seen_by.get(ip, ())),
            runs=count[ip], presence_s=float(presence[ip]),
            presence_share=presence[ip] / (window_s * resolvers) if window_s else 0.0,
            successful_checks=ok_by_ip.get(ip, 0),
        ))
    return out


def _coverage(by: str, daily: list[Counter], attr: dict[str, Attribution],
              targets: tuple[float, ...]) -> Coverage:
    total: Counter = Counter()
    for day in daily:
        total.update(day)
    ranked = stats.rank(total)
    members: dict[str, set[str]] = defaultdict(set)  # /24 → announced prefixes inside it
    for a in attr.values():
        members[a.prefix24].add(a.prefix)
    levels = []
    for target in targets:
        k = ranked.smallest_for(target)
        chosen = [key for key, _ in ranked.entries[:k]]
        level = CoverageLevel(target=target, entries=k, allowed=ranked.share_of_top(k))
        if by == "ip":
            level.prefix24s = len({attr[ip].prefix24 for ip in chosen})
            level.prefixes = len({attr[ip].prefix for ip in chosen})
        elif by == "prefix24":
            level.prefixes = len(set().union(*(members[p] for p in chosen))) if chosen else 0
        levels.append(level)
    return Coverage(by=by, successful_checks=ranked.total, distinct=len(ranked.entries),
                    levels=levels, curve=_curve(ranked), ranked=list(ranked.entries))


def _curve(ranked: stats.Ranked) -> list[list[float]]:
    """Share allowed by the top k entries; at most CURVE_POINTS points (log-spaced ranks)."""
    n = len(ranked.entries)
    if n <= CURVE_POINTS:
        ks = list(range(1, n + 1))
    else:
        ks = sorted({max(1, round(n ** (i / (CURVE_POINTS - 1)))) for i in range(CURVE_POINTS)})
    cumulative, out, covered, i = 0, [], 0, 0
    for k in ks:
        while i < k:
            covered += ranked.entries[i][1]
            i += 1
        cumulative = covered / ranked.total if ranked.total else 0.0
        out.append([float(k), cumulative])
    return out


def _decay(by: str, daily: list[Counter], threshold: float) -> Decay:
    rows = []
    for k in range(1, len(daily)):
        shares = stats.decay_shares(daily, k)
        below = next((k + 1 + i for i, s in enumerate(shares) if s is not None and s < threshold),
                     None)
        size = len({key for day in daily[:k] for key, n in day.items() if n > 0})
        rows.append(DecayRow(built_from_days=k, size=size, shares=shares, first_below_day=below))
    return Decay(by=by, threshold=threshold, rows=rows)

