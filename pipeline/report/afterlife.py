"""The afterlife section: whether a stale allowlist entry is harmless, dead or a risk.

Each afterlife document is one check of a retired address (pipeline/afterlife.py) over TCP and
TLS for the target's name, exactly as a live check. A check *serves* when the handshake
completed with a certificate that verifies for the name; it presents *another certificate*
when the handshake completed with one that does not (another name, expired, unknown issuer:
the address now answers for someone else); otherwise it *refuses* (refused, timed out, the
handshake failed). An entry (an address and the run that retired it) is ``risk`` when any of
its checks presented another certificate, ``dead`` when it stopped serving without that, and
``harmless`` when it served at every check. docs/REPORT.md defines every figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pipeline.report import stats
from pipeline.report.model import Afterlife, AfterlifeEntry
from pipeline.report.rows import AfterlifeRow

SERVING, REFUSING, OTHER_CERTIFICATE = "serving", "refusing", "other_certificate"


def state(tls_established: bool | None, tls_verified: bool | None) -> str:
    """What one afterlife check saw (see the module docstring)."""
    if tls_established and tls_verified:
        return SERVING
    if tls_established:
        return OTHER_CERTIFICATE
    return REFUSING


def _entry(ip: str, run_id: str, checks: list[tuple[int, str, int]]) -> AfterlifeEntry:
    """``checks``: (age, state, documents), in age order."""
    counts = defaultdict(int)
    first: dict[str, float] = {}
    served_until: float | None = None
    for age, st, n in checks:
        counts[st] += n
        first.setdefault(st, float(age))
    for age, st, _ in checks:
        if st != SERVING:
            break
        served_until = float(age)
    verdict = ("risk" if counts[OTHER_CERTIFICATE] else "dead" if counts[REFUSING]
               else "harmless")
    return AfterlifeEntry(
        ip=ip, run_id=run_id, checks=sum(counts.values()), serving=counts[SERVING],
        refusing=counts[REFUSING], other_certificate=counts[OTHER_CERTIFICATE],
        served_until_s=served_until, first_refusing_s=first.get(REFUSING),
        first_other_certificate_s=first.get(OTHER_CERTIFICATE),
        last_age_s=float(checks[-1][0]), verdict=verdict)


def _hours(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 3600:.2f} h"


def _verdict(a: Afterlife) -> str:
    if a.risk:
        return (f"risk: {a.risk} of {a.entries} retired address(es) presented another "
                f"certificate, the first {_hours(a.first_other_certificate_min_s)} after "
                "retirement: a stale entry can reach another party; drop retired addresses "
                "from the list before that")
    if a.dead:
        return (f"harmless: no retired address presented another certificate in the "
                f"{_hours(a.longest_checked_s)} checked; {a.dead} of {a.entries} stopped "
                f"serving (median {_hours(a.first_refusing_median_s)} after retirement), the "
                "others kept serving the name")
    return (f"harmless: every retired address kept serving the name with a valid certificate "
            f"for up to {_hours(a.longest_checked_s)} after retirement")


def afterlife_section(rows: Iterable[AfterlifeRow]) -> list[Afterlife]:
    """Per target (sorted by name), its entries (newest retirement last-checked first)."""
    grouped: dict[str, dict[tuple[str, str], list[tuple[int, str, int]]]] = defaultdict(
        lambda: defaultdict(list))
    for r in rows:
        grouped[r.target][(r.ip, r.run_id)].append(
            (r.age_s, state(r.tls_established, r.tls_verified), r.documents))
    out = []
    for target in sorted(grouped):
        entries = [_entry(ip, run_id, sorted(checks))
                   for (ip, run_id), checks in grouped[target].items()]
        entries.sort(key=lambda e: ({"risk": 0, "dead": 1, "harmless": 2}[e.verdict], e.ip,
                                    e.run_id))
        refusals = [e.first_refusing_s for e in entries
                    if e.verdict == "dead" and e.first_refusing_s is not None]
        others = [e.first_other_certificate_s for e in entries
                  if e.first_other_certificate_s is not None]
        section = Afterlife(
            target=target, entries=len(entries), checks=sum(e.checks for e in entries),
            harmless=sum(e.verdict == "harmless" for e in entries),
            dead=sum(e.verdict == "dead" for e in entries),
            risk=sum(e.verdict == "risk" for e in entries),
            first_refusing_median_s=stats.median(refusals),
            first_other_certificate_min_s=min(others) if others else None,
            longest_checked_s=max(e.last_age_s for e in entries), verdict="",
            addresses=entries)
        section.verdict = _verdict(section)
        out.append(section)
    return out
