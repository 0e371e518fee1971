"""The answer in plain words: is allowlisting feasible, at which granularity, and the numbers.

A firewall team reads the headline and acts; the details say what it rests on. The rule is
deliberately simple and stated in docs/REPORT.md: a granularity is *feasible* when a list built
from the first day's evidence never fell below the threshold share of any later day's
successful checks. The finest feasible granularity wins.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.report.model import Coverage, Decay, DecayRow, Figures, Verdict, Window

NOUNS = {"ip": ("address", "addresses"), "prefix24": ("/24", "/24s"),
         "prefix": ("announced prefix", "announced prefixes")}


def nouns_for(blocks: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``NOUNS`` with the ``prefix24`` granularity named after the blocks it holds: that
    granularity is the /48 for IPv6 addresses (``networks``), so a dual-stack report says
    "/24s or /48s" and an IPv6-only one "/48s" instead of calling /48s "/24s"."""
    v4 = v6 = False
    for block in blocks:
        if ":" in block:
            v6 = True
        else:
            v4 = True
    if not v6:
        return NOUNS
    return {**NOUNS, "prefix24": ("/24 or /48", "/24s or /48s") if v4 else ("/48", "/48s")}


def pct(share: float | None, digits: int = 1) -> str:
    if share is None:
        return "n/a"
    return f"{100 * share:.{digits}f}%"


def noun(by: str, n: int, names: dict[str, tuple[str, str]] = NOUNS) -> str:
    one, many = names[by]
    return f"{n:,} {one if n == 1 else many}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "not reached yet"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _level(cov: Coverage, target: float):
    return next((lv for lv in cov.levels if abs(lv.target - target) < 1e-12), cov.levels[-1])


def _day1(decay: Decay) -> DecayRow | None:
    return decay.rows[0] if decay.rows else None


def _decay_phrase(by: str, row: DecayRow, threshold: float, days: int,
                  names: dict[str, tuple[str, str]] = NOUNS) -> str:
    built = f"a list of {noun(by, row.size, names)} built from day 1"
    if row.first_below_day is None:
        low = min((s for s in row.shares if s is not None), default=None)
        return (f"{built} never fell below {pct(threshold)} through day {days} "
                f"(lowest day: {pct(low)})")
    share = row.shares[row.first_below_day - 2]
    return f"{built} fell below {pct(threshold)} on day {row.first_below_day} ({pct(share)})"


def _details(window: Window, overall: Figures, cov: dict[str, Coverage],
             dec: dict[str, Decay], threshold: float,
             names: dict[str, tuple[str, str]]) -> list[str]:
    """The evidence behind the verdict, one sentence per figure a reader may want to check."""
    details = [
        f"Evidence: {overall.successful:,} successful checks of {overall.documents:,} over "
        f"{window.seconds / 86400:.1f} days from {window.start} to {window.end}; "
        f"{overall.networks.addresses:,} addresses in "
        f"{noun('prefix24', overall.networks.prefix24s, names)}, "
        f"{overall.networks.prefixes:,} announced prefixes, {overall.networks.asns:,} ASNs.",
    ]
    for by in ("ip", "prefix24", "prefix"):
        lv99, lv999 = _level(cov[by], 0.99), _level(cov[by], 0.999)
        details.append(
            f"Coverage by {names[by][0]}: {noun(by, lv99.entries, names)} allowed "
            f"{pct(lv99.allowed, 2)} (99% target), {noun(by, lv999.entries, names)} allowed "
            f"{pct(lv999.allowed, 2)} "
            f"(99.9% target), of {cov[by].distinct:,} seen.")
    for by in ("ip", "prefix24", "prefix"):
        row = _day1(dec[by])
        if row is not None:
            details.append("Decay: " + _decay_phrase(by, row, threshold, window.days, names)
                           + ".")
    rl = overall.run_length
    details.append(
        f"Address runs: {rl.runs:,} ({rl.open:,} still open); median length {duration(rl.median_s)}"
        f", 90th percentile {duration(rl.p90_s)} (Kaplan–Meier, open runs censored).")
    dns_any = next(f for f in overall.failures if f.kind == "dns (any)")
    addr_any = next(f for f in overall.failures if f.kind == "address check (any)")
    details.append(f"Failures: DNS {pct(dns_any.rate, 2)} of queries, connect/TLS "
                   f"{pct(addr_any.rate, 2)} of address checks.")
    return details


def make_verdict(window: Window, overall: Figures, coverage: list[Coverage],
                 decay: list[Decay], threshold: float) -> Verdict:
    """Feasible by address, else by /24 or prefix, else not: the first level whose day-1 list
    never decays below ``threshold`` decides, and the headline says why."""
    cov = {c.by: c for c in coverage}
    dec = {d.by: d for d in decay}
    total = cov["ip"].successful_checks
    if total == 0:
        return Verdict(feasible=None, by=None,
                       headline="No successful checks in the selected window: nothing to judge.",
                       details=[])
    ip99 = _level(cov["ip"], 0.99)
    names = nouns_for(key for key, _ in cov["prefix24"].ranked)
    details = _details(window, overall, cov, dec, threshold, names)

    coverage_phrase = (
        f"an allowlist of {noun('ip', ip99.entries)} in {noun('prefix', ip99.prefixes or 0)} "
        f"would have allowed {pct(ip99.allowed)} of {total:,} successful checks over "
        f"{window.seconds / 86400:.1f} days")
    if window.days < 2:
        headline = ("Too short to judge staleness (under two days of evidence); so far "
                    f"{coverage_phrase}.")
        return Verdict(feasible=None, by=None, headline=headline, details=details)
    stable = {by: (_day1(dec[by]) is not None and _day1(dec[by]).first_below_day is None)
              for by in ("ip", "prefix24", "prefix")}
    ip_phrase = _decay_phrase("ip", _day1(dec["ip"]), threshold, window.days)
    if stable["ip"]:
        headline = (f"Allowlisting by address looks feasible: {coverage_phrase}, and {ip_phrase}.")
        return Verdict(feasible=True, by="ip", headline=headline, details=details)
    for by in ("prefix24", "prefix"):
        if stable[by]:
            lv = _level(cov[by], 0.99)
            headline = (
                f"Not by single addresses — {coverage_phrase}, but {ip_phrase}. By network it "
                f"holds: {noun(by, lv.entries, names)} allowed {pct(lv.allowed)}, and "
                f"{_decay_phrase(by, _day1(dec[by]), threshold, window.days, names)}.")
            return Verdict(feasible=True, by=by, headline=headline, details=details)
    headline = (
        f"Not feasible with a static list: {coverage_phrase}, but {ip_phrase}; even "
        f"{_decay_phrase('prefix', _day1(dec['prefix']), threshold, window.days)}.")
    return Verdict(feasible=False, by=None, headline=headline, details=details)
