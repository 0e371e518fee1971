"""Ground truth: what a perfect observer polling the lab would record.

Computed from the scenario alone (rotation rules, views, fault slots, edge behaviours) plus a
model of the resolvers' caches, in milliseconds per resolver-week, so every number edgewatch
reports can be checked exactly.

Caching model (see docs/LAB.md): the lab serves TTLs divided by the clock speed. When a target's
chain TTLs scale to 0 real seconds (any speed above the smallest TTL), no resolver keeps the
answer (unbound does not store TTL-0 messages, kresd is told not to cache, pdns is configured with
minimum-ttl-override=0), so a poll returns what the authoritative server says at that instant.
When TTLs stay >= 1 s (e.g. real time), every poll still finds the previous answer expired as
long as polls are further apart than the TTL, so ordinary resolvers fetch afresh while a
`serve-expired` resolver answers with what it fetched at the previous poll that reached it (and
refreshes behind the scenes). Polls closer together than that would depend on sub-second timing;
the truth refuses them rather than guess.

Run semantics (the pipeline's, docs/DOCUMENTS.md "Run summary"): key (resolver, target,
address); a run starts at the first successful poll containing the address after one that did not
(or the first poll); it ends at the first later *successful* poll lacking it; failed polls neither
extend nor end it (they count as gaps); a returning address starts a new run; runs still open at
the end are open (right-censored).
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise

from lab.faults import DROP, SERVFAIL, fault_at
from lab.rotation import addresses_at
from lab.scenario import EDGE_OUTCOMES, Resolver, Scenario, Target, address_key, of_type
from lab.scenario_clients import client_ecs
from lab.timeparse import from_epoch, iso, parse_duration, to_epoch

DNS_TIMEOUT = "dns.timeout"
DNS_SERVFAIL = "dns.servfail"


@dataclass(frozen=True)
class AfterlifeCheck:
    """One check a perfect observer makes of a retired address (docs/LAB.md "Afterlife")."""

    target: str
    address: str
    at: datetime
    ended: datetime  # the end of the address's run that ended last (any resolver)
    outcome: str | None  # the connect result expected then: None = serves the name validly


class TruthUndetermined(ValueError):
    """The requested polls would depend on sub-second timing the truth cannot know."""


@dataclass(frozen=True)
class TruthAnswer:
    """What one poll returns. rcode is None when there was no answer at all (timeout)."""

    addresses: frozenset[str]
    rcode: str | None
    error_type: str | None
    stale: bool = False  # served from an expired cache entry (serve-expired)

    @property
    def ok(self) -> bool:
        return self.error_type is None


@dataclass
class Run:
    """One IP run as a perfect observer records it."""

    resolver: str
    target: str
    address: str
    seq: int
    start: datetime
    last_seen: datetime
    end: datetime | None = None  # the first later successful poll lacking the address
    checks: int = 1
    gaps: int = 0

    @property
    def open(self) -> bool:
        return self.end is None

    def to_dict(self) -> dict:
        return {
            "address": self.address, "seq": self.seq, "start": iso(self.start),
            "last_seen": iso(self.last_seen), "end": iso(self.end) if self.end else None,
            "open": self.open, "checks": self.checks, "gaps": self.gaps,
        }


@dataclass
class TargetSummary:
    """Per resolver and target: addresses, runs, reuse and failures over a polling window."""

    polls: int = 0
    unique_addresses: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def reuse_count(self) -> int:
        """Runs that are a returning address: runs beyond the first per address."""
        return len(self.runs) - len({r.address for r in self.runs})

    def to_dict(self) -> dict:
        return {
            "polls": self.polls,
            "unique_addresses": self.unique_addresses,
            "run_count": len(self.runs),
            "open_runs": sum(r.open for r in self.runs),
            "reuse_count": self.reuse_count,
            "failures": self.failures,
            "runs": [r.to_dict() for r in self.runs],
        }


def _epoch(t: datetime | float) -> float:
    return to_epoch(t) if isinstance(t, datetime) else float(t)


def poll_times(start: datetime | float, end: datetime | float,
               interval: str | float) -> list[float]:
    """Grid instants start, start+interval, ... < end (scenario epoch seconds)."""
    step = parse_duration(interval)
    a, b = _epoch(start), _epoch(end)
    n = max(0, math.ceil((b - a) / step - 1e-9))
    return [a + i * step for i in range(n)]


class GroundTruth:
    """Truth for one scenario at one clock speed (speed changes only what caches can keep)."""

    def __init__(self, scenario: Scenario, speed: float = 1.0,
                 source: str | ipaddress.IPv4Address | None = None) -> None:
        self.scenario = scenario
        self.speed = float(speed)
        # the observer's source address (None: the lab's default observer, 127.0.0.1)
        self.source = None if source is None else ipaddress.IPv4Address(str(source))

    def for_observer(self, observer: str) -> GroundTruth:
        """The truth as the scenario's observer ``observer`` sees it (from its source address):
        truth for (observer, resolver, target, t)."""
        return GroundTruth(self.scenario, self.speed, self.scenario.observer(observer).source)

    # -- building blocks -----------------------------------------------------------------
    def view_of(self, resolver: Resolver | str) -> str:
        """The view the authoritative server uses for this resolver's queries."""
        r = self._resolver(resolver)
        subnet = r.client_subnet
        if r.client_address_ecs:  # pdns-recursor forwards the asker's /24 (docs/LAB.md)
            subnet = client_ecs(self.source or ipaddress.IPv4Address("127.0.0.1"))
        if subnet is not None:
            for view in self.scenario.views:
                if any(subnet.subnet_of(s) or subnet.network_address in s
                       for s in view.client_subnets):
                    return view.name
        return r.view

    def authoritative(self, resolver: str, target: str, t: datetime | float,
                      rdtype: str = "A") -> frozenset[str]:
        """The A (or AAAA) RRset the authoritative server gives this resolver at scenario t."""
        return of_type(addresses_at(self._target(target), self.view_of(resolver), _epoch(t)),
                       rdtype)

    def fault(self, resolver: str, t: datetime | float) -> str | None:
        r = self._resolver(resolver)
        return fault_at(r.faults, self.scenario.seed, r.name, self.scenario.start, _epoch(t))

    def cached_ttl(self, target: str) -> int:
        """Real seconds a resolver may keep the whole answer (min over the chain), 0 = never."""
        tg = self._target(target)
        ttls = [tg.ttl] + ([tg.cname_ttl] if len(tg.chain) > 1 else [])
        return min(int(x // self.speed) for x in ttls)

    # -- the API -------------------------------------------------------------------------
    def answer(self, resolver: str, target: str, t: datetime | float,
               rdtype: str = "A") -> TruthAnswer:
        """One poll at t with nothing usable in the resolver's cache (see observe for caching).

        A fault slot hits every query in it, so an A and an AAAA poll at one instant fail
        alike."""
        fault = self.fault(resolver, t)
        if fault == DROP:
            return TruthAnswer(frozenset(), None, DNS_TIMEOUT)
        if fault == SERVFAIL:
            return TruthAnswer(frozenset(), "SERVFAIL", DNS_SERVFAIL)
        return TruthAnswer(self.authoritative(resolver, target, t, rdtype), "NOERROR", None)

    def observe(self, resolver: str, target: str, times: Iterable[datetime | float],
                rdtype: str = "A") -> list[TruthAnswer]:
        """What polls at `times` (ascending) through one resolver return, caching included."""
        r = self._resolver(resolver)
        ts = [_epoch(t) for t in times]
        if any(b <= a for a, b in pairwise(ts)):
            raise ValueError("poll times must be strictly ascending")
        ttl = self.cached_ttl(target)
        out: list[TruthAnswer] = []
        last_fetch: tuple[float, frozenset[str]] | None = None
        for i, t in enumerate(ts):
            fault = self.fault(r.name, t)
            if fault is not None:
                out.append(self.answer(r.name, target, t, rdtype))
                continue
            fresh = self.authoritative(r.name, target, t, rdtype)
            if ttl > 0 and i > 0 and (t - ts[i - 1]) / self.speed <= ttl + 1:
                raise TruthUndetermined(
                    f"polls {(t - ts[i - 1]):g}s apart at speed {self.speed:g} are within the "
                    f"{ttl}s real TTL of {target}; poll less often or accelerate more")
            stale_ok = (r.cache == "serve-expired" and ttl > 0 and last_fetch is not None
                        and t - last_fetch[0] < r.stale_ttl)
            if stale_ok:
                assert last_fetch is not None
                out.append(TruthAnswer(last_fetch[1], "NOERROR", None, stale=True))
            else:
                out.append(TruthAnswer(fresh, "NOERROR", None))
            last_fetch = (t, fresh)
        return out

    def runs(self, resolver: str, target: str, times: Sequence[datetime | float],
             rdtype: str = "A") -> list[Run]:
        """The IP runs a perfect observer polling at `times` records (runs are per type)."""
        ts = [_epoch(t) for t in times]
        answers = self.observe(resolver, target, ts, rdtype)
        open_runs: dict[str, Run] = {}
        done: list[Run] = []
        seqs: Counter[str] = Counter()
        for t, ans in zip(ts, answers, strict=True):
            when = from_epoch(t)
            if not ans.ok:
                for run in open_runs.values():
                    run.gaps += 1
                continue
            for address in list(open_runs):
                if address not in ans.addresses:
                    run = open_runs.pop(address)
                    run.end = when
                    done.append(run)
            for address in sorted(ans.addresses):
                if address in open_runs:
                    open_runs[address].checks += 1
                    open_runs[address].last_seen = when
                else:
                    seqs[address] += 1
                    open_runs[address] = Run(resolver, target, address, seqs[address], when, when)
        done.extend(open_runs.values())
        done.sort(key=lambda run: (run.start, run.address))
        return done

    def summary(self, start: datetime | float | None = None, end: datetime | float | None = None,
                interval: str | float | None = None, rdtype: str = "A"
                ) -> dict[str, dict[str, TargetSummary]]:
        """Per resolver, per target: unique addresses, runs, reuse and failures by kind, for
        one record type (A by default; AAAA for a dual-stack scenario's IPv6 side)."""
        start = self.scenario.start if start is None else start
        end = self.scenario.end if end is None else end
        times = poll_times(start, end, self.scenario.grid if interval is None else interval)
        out: dict[str, dict[str, TargetSummary]] = {}
        for r in self.scenario.resolvers:
            per_target = {}
            for tg in self.scenario.targets:
                answers = self.observe(r.name, tg.name, times, rdtype)
                failures = Counter(a.error_type for a in answers if a.error_type)
                addrs = sorted({a for ans in answers for a in ans.addresses}, key=address_key)
                per_target[tg.name] = TargetSummary(
                    polls=len(times), unique_addresses=addrs,
                    runs=self.runs(r.name, tg.name, times, rdtype),
                    failures=dict(sorted(failures.items())))
            out[r.name] = per_target
        return out

    def afterlife(self, target: str, times: Sequence[datetime | float],
                  duration: str | float) -> list[AfterlifeCheck]:
        """The afterlife checks of polls at ``times`` (ascending) with ``[afterlife] duration``.

        At poll k an address is checked when, after poll k-1, no resolver had an open run of
        it and its latest ended run ended less than ``duration`` before poll k, and no
        resolver's successful answer at poll k contains it (a new run ends the afterlife).
        """
        ts = [_epoch(t) for t in times]
        span = parse_duration(duration) if isinstance(duration, str) else float(duration)
        names = [r.name for r in self.scenario.resolvers]
        answers = {n: self.observe(n, target, ts) for n in names}
        runs = [run for n in names for run in self.runs(n, target, ts)]
        out: list[AfterlifeCheck] = []
        for k in range(1, len(ts)):
            prev, t = ts[k - 1], ts[k]
            live = {r.address for r in runs if r.start.timestamp() <= prev
                    and (r.end is None or r.end.timestamp() > prev)}
            ended: dict[str, float] = {}
            for r in runs:
                if r.end is not None and r.end.timestamp() <= prev:
                    ended[r.address] = max(ended.get(r.address, 0.0), r.end.timestamp())
            now = {a for n in names if answers[n][k].ok for a in answers[n][k].addresses}
            for address, end in sorted(ended.items()):
                if address in live or address in now or t - end >= span:
                    continue
                out.append(AfterlifeCheck(target, address, from_epoch(t), from_epoch(end),
                                          self.edge_outcome(address, t)))
        return out

    def edge_outcome(self, address: str, t: datetime | float | None = None) -> str | None:
        """Expected connect result: None (ok) | tcp.timeout | tcp.refused | tls.* (at scenario
        time ``t`` when the address's behaviour changes; default: its initial behaviour)."""
        if t is None:
            return EDGE_OUTCOMES[self.scenario.edge_behaviour.get(address, "ok")]
        return EDGE_OUTCOMES[self.scenario.behaviour_at(address, _epoch(t))]

    # -- lookups -------------------------------------------------------------------------
    def _resolver(self, resolver: Resolver | str) -> Resolver:
        return resolver if isinstance(resolver, Resolver) else self.scenario.resolver(resolver)

    def _target(self, target: Target | str) -> Target:
        return target if isinstance(target, Target) else self.scenario.target(target)
