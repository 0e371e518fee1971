"""How well a deployed allowlist covered the stored checks: the figure behind ``allowlist
verify`` and the report's list sections.

Coverage is the share of *successful* checks (``event.outcome: success``, as ``edgewatch
allowlist`` counts them) whose address the list contains: the connections a firewall with that
list would have let through, of those that worked. A missed address is named with the first time
a successful check reached it, per target and resolver, because "since when" is what an operator
needs to judge a stale list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipeline.allowlists.deployed import ListVersion
from pipeline.report.networks import Attribution
from pipeline.report.rows import DAY_S, TargetAddressRow


def iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def share(allowed: int, checks: int) -> float | None:
    return None if checks == 0 else allowed / checks


@dataclass
class GroupCoverage:
    """One target through one resolver."""

    target: str
    resolver: str
    checks: int = 0
    allowed: int = 0
    coverage: float | None = None


@dataclass
class DayCoverage:
    """One 24 h period from the window's origin."""

    day: int
    start: str | None
    checks: int = 0
    allowed: int = 0
    coverage: float | None = None


@dataclass
class MissedAddress:
    """An address the list does not contain, that served successful checks."""

    ip: str
    first: str | None  # the first successful check to it in the window (UTC)
    checks: int
    prefix: str | None
    asn: int | None
    via: list[str] = field(default_factory=list)  # "target via resolver", sorted


@dataclass
class ListCoverage:
    name: str
    file: str
    networks: int
    checks: int
    allowed: int
    coverage: float | None
    groups: list[GroupCoverage]
    days: list[DayCoverage]
    missed: list[MissedAddress]


def list_coverage(lst: ListVersion, rows: Iterable[TargetAddressRow], origin: datetime,
                  attribution: dict[str, Attribution] | None = None) -> ListCoverage:
    """Fold the rows of a window into the coverage of one list (rows may be shared by lists)."""
    groups: dict[tuple[str, str], GroupCoverage] = {}
    days: dict[int, DayCoverage] = {}
    missed: dict[str, tuple[datetime, int, set[str]]] = {}
    for r in rows:
        ok = lst.allows(r.ip)
        g = groups.setdefault((r.target, r.resolver), GroupCoverage(r.target, r.resolver))
        d = days.setdefault(r.day, DayCoverage(r.day, iso(origin + timedelta(seconds=r.day
                                                                             * DAY_S))))
        g.checks += r.ok
        d.checks += r.ok
        if ok:
            g.allowed += r.ok
            d.allowed += r.ok
            continue
        first, n, via = missed.get(r.ip, (r.first, 0, set()))
        via.add(f"{r.target} via {r.resolver}")
        missed[r.ip] = (min(first, r.first), n + r.ok, via)
    for item in (*groups.values(), *days.values()):
        item.coverage = share(item.allowed, item.checks)
    attribution = attribution or {}
    out_missed = []
    for ip, (first, n, via) in sorted(missed.items(), key=lambda kv: (kv[1][0], kv[0])):
        a = attribution.get(ip)
        out_missed.append(MissedAddress(ip, iso(first), n, a.prefix if a else None,
                                        a.asn if a else None, sorted(via)))
    checks = sum(g.checks for g in groups.values())
    allowed = sum(g.allowed for g in groups.values())
    return ListCoverage(name=lst.name, file=str(lst.path), networks=len(lst.networks),
                        checks=checks, allowed=allowed,
                        coverage=share(allowed, checks),
                        groups=sorted(groups.values(), key=lambda g: (g.target, g.resolver)),
                        days=sorted(days.values(), key=lambda d: d.day), missed=out_missed)
