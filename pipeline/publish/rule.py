"""The living list's rule, as a pure function of the evidence: what is listed, and when not.

The rule (docs/LIVING_LIST.md states it for operators):

* **in**: an entry (an address, its /24 or /48, or its announced prefix: ``by``) is listed while
  its newest successful, verified check is at most ``hold`` older than the target's newest
  successful, verified check (the *evidence time*). Measured against the evidence time and not
  the wall clock, a probe outage freezes the list instead of emptying it.
* **cap**: at most ``max_entries`` entries per target and family; when more qualify, those with
  the most successful checks within ``window`` stay (then the most recently seen).
* **floor**: when the successful checks of the last ``hold`` arrive at less than ``floor`` times
  the rate of the whole ``window`` (a partial outage: resolvers or paths that stopped answering,
  not addresses that stopped serving), nothing is removed; additions still go in.
* **outage**: with no successful, verified check within ``window`` the previous list stays.

Additions therefore take effect at the first refresh after the check that saw them; removals
``hold`` after the last sighting.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.report.networks import derived_prefix24, host_network

BY = ("ip", "prefix24", "prefix")
BUCKET_S = 300  # evidence is counted in 5-minute buckets (the floor's rates)


@dataclass(frozen=True)
class ListRule:
    """The parameters of the rule above (durations in scenario seconds)."""

    by: str = "ip"
    hold_s: float = 6 * 3600.0
    window_s: float = 24 * 3600.0
    max_entries: int = 1000
    floor: float = 0.5


@dataclass(frozen=True, slots=True)
class Sighting:
    """Successful, verified checks of one address for one target within one 5-minute bucket."""

    target: str
    ip: str
    prefix24: str | None
    prefix: str | None
    bucket: int  # epoch seconds // BUCKET_S
    checks: int
    last: datetime


@dataclass(frozen=True, slots=True)
class Entry:
    cidr: str
    checks: int  # successful verified checks within the window
    last: datetime  # newest successful verified check of any of its addresses

    @property
    def family(self) -> int:
        return ipaddress.ip_network(self.cidr).version


@dataclass(frozen=True)
class TargetList:
    """One target's list as published: its entries and why it is what it is."""

    target: str
    entries: tuple[Entry, ...]
    evidence_time: datetime | None
    held: str | None = None  # why removals were withheld (floor / outage), for /healthz
    capped: int = 0  # entries that qualified but exceeded max_entries

    def cidrs(self, family: int | None = None) -> list[str]:
        """The entries, IPv4 first, in address order (the body a firewall fetches)."""
        nets = sorted((ipaddress.ip_network(e.cidr) for e in self.entries
                       if family is None or e.family == family),
                      key=lambda n: (n.version, n.network_address, n.prefixlen))
        return [str(n) for n in nets]


@dataclass
class _Entry:
    checks: int = 0
    last: datetime | None = None
    addresses: set[str] = field(default_factory=set)


def entry_key(by: str, ip: str, prefix24: str | None, prefix: str | None) -> str:
    """The entry an address falls in; an unknown announced prefix is the address alone (never a
    guess that widens the list)."""
    if by == "ip":
        return host_network(ip)
    if by == "prefix24":
        return prefix24 or derived_prefix24(ip)
    if by == "prefix":
        return prefix or host_network(ip)
    raise ValueError(f"by must be one of {BY}")


def compute(target: str, sightings: Iterable[Sighting], rule: ListRule,
            now: datetime, previous: TargetList | None = None) -> TargetList:
    """The target's list at ``now`` (scenario time) from its sightings and the previous list."""
    rows = [s for s in sightings if s.target == target]
    if not rows:
        return _keep(target, previous, "no successful, verified check in the evidence read")
    evidence = max(s.last for s in rows)
    if (now - evidence).total_seconds() > rule.window_s:
        return _keep(target, previous, f"no successful, verified check since {_iso(evidence)} "
                     f"(longer than the window of {rule.window_s:g} s)")
    entries = _group(rows, rule, evidence)
    listed = {k: e for k, e in entries.items()
              if (evidence - e.last).total_seconds() <= rule.hold_s}
    kept, capped = _cap(listed, rule.max_entries)
    fresh = TargetList(target, tuple(kept), evidence, None, capped)
    thin = _thin_evidence(rows, rule, evidence)
    if thin and previous is not None:
        missing = [e for e in previous.entries if e.cidr not in {x.cidr for x in kept}]
        if missing:
            return TargetList(target, tuple(kept) + tuple(missing), evidence, thin, capped)
    return fresh


def _group(rows: list[Sighting], rule: ListRule, evidence: datetime) -> dict[str, Entry]:
    since = evidence - timedelta(seconds=rule.window_s)
    acc: dict[str, _Entry] = defaultdict(_Entry)
    for s in rows:
        e = acc[entry_key(rule.by, s.ip, s.prefix24, s.prefix)]
        if s.last >= since:
            e.checks += s.checks
        e.last = s.last if e.last is None or s.last > e.last else e.last
        e.addresses.add(s.ip)
    return {k: Entry(k, e.checks, e.last) for k, e in acc.items() if e.last is not None}


def _cap(listed: dict[str, Entry], cap: int) -> tuple[list[Entry], int]:
    """At most ``cap`` per family: most checks in the window first, then most recent."""
    out: list[Entry] = []
    dropped = 0
    for family in (4, 6):
        fam = sorted((e for e in listed.values() if e.family == family),
                     key=lambda e: (-e.checks, -e.last.timestamp(), e.cidr))
        out += fam[:cap]
        dropped += max(0, len(fam) - cap)
    return out, dropped


def _thin_evidence(rows: list[Sighting], rule: ListRule, evidence: datetime) -> str | None:
    """Why the last ``hold`` looks like a partial outage, or None.

    Rates are successful checks per second, from bucket starts: the last ``hold`` against the
    whole ``window`` (or as much of it as the evidence covers)."""
    end = evidence.timestamp()
    first = min(s.bucket for s in rows) * BUCKET_S
    recent_from = (end - rule.hold_s) // BUCKET_S * BUCKET_S
    window_from = max((end - rule.window_s) // BUCKET_S * BUCKET_S, first)
    if recent_from <= window_from:
        return None  # the evidence is no longer than hold: nothing to compare with
    recent = sum(s.checks for s in rows if s.bucket * BUCKET_S >= recent_from)
    whole = sum(s.checks for s in rows if s.bucket * BUCKET_S >= window_from)
    rate_recent = recent / max(end - recent_from, 1.0)
    rate_whole = whole / max(end - window_from, 1.0)
    if rate_whole > 0 and rate_recent < rule.floor * rate_whole:
        return (f"held: successful checks of the last {rule.hold_s:g} s arrive at "
                f"{rate_recent / rate_whole:.0%} of the window's rate (floor {rule.floor:.0%}); "
                "nothing is removed until the evidence recovers")
    return None


def _keep(target: str, previous: TargetList | None, why: str) -> TargetList:
    if previous is None:
        return TargetList(target, (), None, why)
    return TargetList(target, previous.entries, previous.evidence_time, why, previous.capped)


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="seconds").replace("+00:00", "Z")
