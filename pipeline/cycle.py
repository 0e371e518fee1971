"""One cycle: every target through every resolver, every distinct address checked once.

All DNS queries of a cycle run concurrently under one concurrency limit, each bounded by its own
timeout, so a dead resolver costs the cycle its timeout and nothing more. Connectivity is tested
once per distinct address (and port and name) per cycle and shared by every resolver that
returned it: fourteen resolvers agreeing on an address must not mean fourteen handshakes.

The run state advances only after the cycle's records reached every sink; if a sink fails the
transition is rolled back, so no run ever refers to documents that were not stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.clock import ScenarioClock
from pipeline.config import Config, Resolver, Target
from pipeline.documents import CheckContext, Record, check_id, check_records, iso, run_record
from pipeline.probe.connect import ConnectResult, probe_connect, tls_contexts
from pipeline.probe.dns import DnsResult, probe_dns
from pipeline.probe.netinfo import NetInfo, NetinfoTable, prefix24
from pipeline.probe.rdns import RdnsResult, ReverseLookup
from pipeline.runs import Run, RunTracker
from pipeline.sinks.base import Sink

log = logging.getLogger(__name__)


@dataclass
class CycleStats:
    started: datetime
    real_seconds: float = 0.0
    cpu_seconds: float = 0.0
    queries: int = 0
    checks: int = 0
    documents: int = 0
    addresses: int = 0
    connects: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    delivered: bool = True


@dataclass(frozen=True, slots=True)
class _Query:
    target: Target
    rtype: str
    resolver: Resolver
    at: datetime
    result: DnsResult


class CycleRunner:
    """Long-lived probe state (TLS contexts, caches, run tracker) and the cycle itself."""

    def __init__(self, config: Config, clock: ScenarioClock, tracker: RunTracker,
                 sinks: Sequence[Sink]) -> None:
        self.config = config
        self.clock = clock
        self.tracker = tracker
        self.sinks = list(sinks)
        self.contexts = tls_contexts(config.tls_ca_file)
        self.netinfo = NetinfoTable.load(config.netinfo_table) if config.netinfo_table else None
        self.rdns = None
        if config.rdns_enabled and config.rdns_resolver:
            self.rdns = ReverseLookup(config.rdns_resolver, config.timeouts.dns,
                                      now=lambda: self.clock.now().timestamp())
        self.cycles = 0

    async def open(self) -> None:
        for sink in self.sinks:
            await sink.open()

    async def close(self) -> None:
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception:  # a failing sink must not keep the others from closing
                log.exception("closing sink %s failed", sink.name)
        self.tracker.close()

    async def _query(self, sem: asyncio.Semaphore, target: Target, rtype: str,
                     resolver: Resolver) -> _Query:
        async with sem:
            at = self.clock.now()
            result = await probe_dns(resolver, target.name, rtype, self.config.timeouts.dns,
                                     keep_raw=self.config.keep_raw_answers,
                                     ssl_context=self.contexts[0])
        return _Query(target, rtype, resolver, at, result)

    async def _connect(self, sem: asyncio.Semaphore, address: str, target: Target
                       ) -> ConnectResult:
        t = self.config.timeouts
        async with sem:
            return await probe_connect(address, target.port, target.server_name, self.contexts,
                                       t.connect, t.tls, target.http_path, t.http)

    async def _reverse(self, sem: asyncio.Semaphore, address: str) -> RdnsResult:
        assert self.rdns is not None
        async with sem:
            return await self.rdns.lookup(address)

    def _netinfo(self, address: str) -> NetInfo:
        if self.netinfo is not None:
            return self.netinfo.lookup(address)
        return NetInfo(address, None, None, None, prefix24(address))

    async def run_cycle(self) -> CycleStats:
        cpu0, real0 = time.process_time(), time.perf_counter()
        started = self.clock.now()
        stats = CycleStats(started=started)
        cfg = self.config
        sem = asyncio.Semaphore(cfg.limits.concurrency)
        cycle_id = hashlib.sha1(f"{cfg.observer_name}|{iso(started)}".encode(),
                                usedforsecurity=False).hexdigest()[:20]

        # Connectivity checks start as soon as the first resolver returns an address, so a
        # dead resolver's timeout and a black-holed edge's timeout overlap instead of adding up.
        connect_tasks: dict[tuple[str, int, str], asyncio.Task[ConnectResult]] = {}
        ptr_tasks: dict[str, asyncio.Task[RdnsResult]] = {}

        async def ask(target: Target, rtype: str, resolver: Resolver) -> _Query:
            q = await self._query(sem, target, rtype, resolver)
            for a in q.result.addresses if q.result.ok else ():
                key = (a.address, target.port, target.server_name)
                if key not in connect_tasks:
                    connect_tasks[key] = asyncio.create_task(self._connect(sem, a.address, target))
                if self.rdns is not None and a.address not in ptr_tasks:
                    ptr_tasks[a.address] = asyncio.create_task(self._reverse(sem, a.address))
            return q

        queries = await asyncio.gather(*(
            ask(target, rtype, resolver)
            for target in cfg.targets for rtype in target.record_types
            for resolver in cfg.resolvers
        ))
        stats.queries = len(queries)
        keys = list(connect_tasks)
        conn_results = await asyncio.gather(*connect_tasks.values())
        ptr_results = await asyncio.gather(*ptr_tasks.values())
        connects = dict(zip(keys, conn_results, strict=True))
        rdns = {r.address: r for r in ptr_results}
        addresses = {k[0] for k in keys}
        netinfo = {a: self._netinfo(a) for a in addresses}
        stats.addresses, stats.connects = len(addresses), len(keys)

        records: list[Record] = []
        changed_runs: dict[str, Run] = {}
        for q in queries:
            res = q.result
            assignments, changed = self.tracker.observe(
                cfg.observer_name, q.target.name, q.rtype, q.resolver.name, q.resolver.address,
                q.at, res.ok, (a.address for a in res.addresses) if res.ok else (),
            )
            for run in changed:
                changed_runs[run.id] = run
            ctx = CheckContext(cycle_id, check_id(cfg.observer_name, started, q.target.name,
                                                  q.rtype),
                               cfg.observer_name, cfg.observer_geo, q.target.name, q.rtype,
                               q.target.port)
            per_addr = {a.address: connects[(a.address, q.target.port, q.target.server_name)]
                        for a in res.addresses if res.ok}
            docs = check_records(ctx, q.at, res, per_addr, rdns, netinfo, assignments)
            records.extend(docs)
            stats.checks += 1
            if res.error_type:
                stats.failures[res.error_type] += 1
        for c in connects.values():
            if c.error_type:
                stats.failures[c.error_type] += 1
        for run in changed_runs.values():
            info = netinfo.get(run.key.address) or self._netinfo(run.key.address)
            ptr = rdns.get(run.key.address)
            records.append(run_record(run, info, ptr.hostname if ptr else None))
        stats.documents = len(records)

        try:
            for sink in self.sinks:
                await sink.write(records)
            for sink in self.sinks:
                if not getattr(sink, "durable_writes", False):
                    await sink.flush()
        except Exception:
            log.exception("a sink failed; the run state of this cycle is rolled back")
            self.tracker.rollback()
            stats.delivered = False
        else:
            self.tracker.commit()
        self.cycles += 1
        stats.real_seconds = time.perf_counter() - real0
        stats.cpu_seconds = time.process_time() - cpu0
        log.info("cycle %s at %s: %d queries, %d addresses, %d documents, %.3fs (cpu %.3fs)",
                 self.cycles, iso(started), stats.queries, stats.addresses, stats.documents,
                 stats.real_seconds, stats.cpu_seconds)
        return stats

