"""Step one of a cycle: the probes' answers, every target through every resolver.

All DNS queries of a cycle run concurrently under one concurrency limit, each bounded by its own
timeout, so a dead resolver costs the cycle its timeout and nothing more. Connectivity is tested
once per distinct address (and port and name) per cycle and shared by every resolver that
returned it: fourteen resolvers agreeing on an address must not mean fourteen handshakes.
Connectivity checks start as soon as the first resolver returns an address, so a dead
resolver's timeout and a black-holed edge's timeout overlap instead of adding up.

The fan-out runs in one ``asyncio.TaskGroup`` and every probe call is wrapped: a probe that raises
(a bug, or a peer's answer that no handler foresaw) becomes a ``probe.crashed`` result for that
query or address, so one bad answer can neither abort the other tasks nor leave them pending.
At most ``limits.max_addresses`` addresses of one answer are connected to (and reverse-resolved).
Nothing here touches run state or documents: the result is plain observations.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pipeline.afterlife import Retired
from pipeline.config import Config, Resolver, Target
from pipeline.probe.connect import ConnectResult
from pipeline.probe.dns import DnsResult
from pipeline.probe.probes import Probes
from pipeline.probe.rdns import RdnsResult

log = logging.getLogger(__name__)

CRASHED = "probe.crashed"

ConnectKey = tuple[str, int, str]  # address, port, server name


class Clock(Protocol):
    """What a cycle needs of a clock: the instant that stamps its documents."""

    def now(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Query:
    """One question of the cycle and the resolver's answer, stamped when it was asked."""

    target: Target
    rtype: str
    resolver: Resolver
    at: datetime
    result: DnsResult


@dataclass
class Observations:
    """Everything one cycle's probes saw, before any run or document is made of it."""

    started: datetime
    queries: list[Query] = field(default_factory=list)
    connects: dict[ConnectKey, ConnectResult] = field(default_factory=dict)
    rdns: dict[str, RdnsResult] = field(default_factory=dict)
    retired: list[Retired] = field(default_factory=list)  # checked in ``connects`` too

    def answered(self) -> set[str]:
        """Every address some successful answer of this cycle holds (capped or not)."""
        return {a.address for q in self.queries if q.result.ok for a in q.result.addresses}

    def addresses(self) -> set[str]:
        """Every address answered (capped or not) or connected to in this cycle."""
        return {k[0] for k in self.connects} | self.answered()


def _crash_message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


class _FanOut:
    """The tasks of one cycle: queries, then a connect and a PTR per new address."""

    def __init__(self, probes: Probes, clock: Clock, tg: asyncio.TaskGroup,
                 config: Config) -> None:
        self.probes, self.clock, self.tg = probes, clock, tg
        self.sem = asyncio.Semaphore(config.limits.concurrency)
        self.cap = config.limits.max_addresses
        self.connects: dict[ConnectKey, asyncio.Task[ConnectResult]] = {}
        self.ptrs: dict[str, asyncio.Task[RdnsResult]] = {}

    async def ask(self, target: Target, rtype: str, resolver: Resolver) -> Query:
        q = await self._query(target, rtype, resolver)
        # Only the first ``cap`` addresses, in the resolver's order, are checked.
        for a in q.result.addresses[:self.cap] if q.result.ok else ():
            key = (a.address, target.port, target.server_name)
            if key not in self.connects:
                self.connects[key] = self.tg.create_task(self._connect(a.address, target))
            if self.probes.reverse_enabled and a.address not in self.ptrs:
                self.ptrs[a.address] = self.tg.create_task(self._reverse(a.address))
        return q

    def check_retired(self, retired: Retired) -> None:
        """An afterlife check: the same connect probe, shared with a live check of the key."""
        if retired.connect_key not in self.connects:
            self.connects[retired.connect_key] = self.tg.create_task(
                self._connect(retired.address, retired.target))

    async def _query(self, target: Target, rtype: str, resolver: Resolver) -> Query:
        async with self.sem:
            at = self.clock.now()
            try:
                result = await self.probes.dns(resolver, target.name, rtype)
            except Exception as exc:  # defence in depth: probes classify, they should not raise
                log.exception("DNS probe of %s %s via %s raised", target.name, rtype,
                              resolver.name)
                result = DnsResult(resolver, target.name, rtype, error_type=CRASHED,
                                   error_message=_crash_message(exc))
        return Query(target, rtype, resolver, at, result)

    async def _connect(self, address: str, target: Target) -> ConnectResult:
        async with self.sem:
            try:
                return await self.probes.connect(address, target)
            except Exception as exc:
                log.exception("connect probe of %s:%s raised", address, target.port)
                return ConnectResult(address, target.port, target.server_name,
                                     error_type=CRASHED, error_message=_crash_message(exc))

    async def _reverse(self, address: str) -> RdnsResult:
        async with self.sem:
            try:
                return await self.probes.ptr(address)
            except Exception:
                log.exception("reverse lookup of %s raised", address)
                return RdnsResult(address, None, error_type=CRASHED)


async def observe(probes: Probes, config: Config, clock: Clock, started: datetime,
                  retired: list[Retired] | None = None) -> Observations:
    """Every configured question through every resolver, the checks of their answers, and
    the afterlife checks of the ``retired`` addresses (concurrently, in the same budget)."""
    query_tasks: list[asyncio.Task[Query]] = []
    retired = retired or []
    async with asyncio.TaskGroup() as tg:
        fan = _FanOut(probes, clock, tg, config)
        for r in retired:
            fan.check_retired(r)
        for target in config.targets:
            for rtype in target.record_types:
                for resolver in config.resolvers:
                    query_tasks.append(tg.create_task(fan.ask(target, rtype, resolver)))
    return Observations(started, [t.result() for t in query_tasks],
                        {k: t.result() for k, t in fan.connects.items()},
                        {a: t.result() for a, t in fan.ptrs.items()}, retired)
