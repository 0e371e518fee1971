"""One cycle: every target through every resolver, every distinct address checked once.

All DNS queries of a cycle run concurrently under one concurrency limit, each bounded by its own
timeout, so a dead resolver costs the cycle its timeout and nothing more. Connectivity is tested
once per distinct address (and port and name) per cycle and shared by every resolver that
returned it: fourteen resolvers agreeing on an address must not mean fourteen handshakes.

The run state is committed just before the cycle's records go to the sinks, with the run
summaries journalled in the same transaction; the journal is cleared once every sink took them,
and replayed at the next start if the process died in between. If a sink fails the transition is
undone, so no run ever refers to documents that were not stored, and a kill -9 can never leave
the store with a run the state does not know.

The fan-out runs in one ``asyncio.TaskGroup`` and every probe call is wrapped: a probe that raises
(a bug, or a peer's answer that no handler foresaw) becomes a ``probe.crashed`` result for that
query or address, so one bad answer can neither abort the other tasks nor leave them pending.
At most ``limits.max_addresses`` addresses of one answer are connected to (and reverse-resolved);
the others are still recorded, in their runs and in a document each, marked
``edgewatch.connect.skipped: "cap"``, so one answer of 254 addresses cannot stretch the cycle.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import orjson

from pipeline.clock import ScenarioClock
from pipeline.config import Config, Resolver, Target
from pipeline.documents import (
    CAP_SKIPPED,
    CheckContext,
    Record,
    check_id,
    check_records,
    dumps,
    iso,
    run_record,
)
from pipeline.probe.connect import ConnectResult, probe_connect, tls_contexts
from pipeline.probe.dns import DnsResult, probe_dns
from pipeline.probe.netinfo import NetInfo, NetinfoTable, prefix24
from pipeline.probe.rdns import RdnsResult, ReverseLookup
from pipeline.runs import Run, RunTracker
from pipeline.sinks.base import DeliveryError, Sink

log = logging.getLogger(__name__)

CRASHED = "probe.crashed"


class Clock(Protocol):
    """What a cycle needs of a clock: the instant that stamps its documents."""

    def now(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Probes:
    """The probe functions a cycle calls, injectable so a test can hand it a probe that raises.

    ``ptr`` (address → RdnsResult) replaces the configured reverse lookup when given.
    """

    dns: Callable[..., Awaitable[DnsResult]] = probe_dns
    connect: Callable[..., Awaitable[ConnectResult]] = probe_connect
    ptr: Callable[[str], Awaitable[RdnsResult]] | None = None


def _crash_message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def check_budget(config: Config) -> float:
    """The longest one check can take under the configured timeouts: query, then connect + TLS
    handshake + HTTP request of an answered address (the reverse lookup runs beside them)."""
    t = config.timeouts
    return t.dns + max(t.connect + t.tls + t.http, t.dns if config.rdns_enabled else 0.0)


def cycle_budget(config: Config) -> float:
    """An upper bound of one cycle's duration once every probe honours its timeout.

    Greedy scheduling under ``limits.concurrency`` finishes within (total work / slots) + the
    longest chain; the total work counts every query at its DNS timeout and, per answer, up to
    ``limits.max_addresses`` addresses at their connect + TLS + HTTP (+ PTR) timeouts.
    """
    t = config.timeouts
    queries = sum(len(target.record_types) for target in config.targets) * len(config.resolvers)
    per_address = t.connect + t.tls + t.http + (t.dns if config.rdns_enabled else 0.0)
    work = queries * t.dns + queries * config.limits.max_addresses * per_address
    return work / max(1, config.limits.concurrency) + check_budget(config)


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
    skipped: int = 0  # address documents whose connect check the address cap skipped
    failures: Counter[str] = field(default_factory=Counter)
    delivered: bool = True
    clock_behind_s: float = 0.0  # > 0: skipped, the clock read before the last recorded instant


@dataclass(frozen=True, slots=True)
class _Query:
    target: Target
    rtype: str
    resolver: Resolver
    at: datetime
    result: DnsResult


def _ms(ts: datetime) -> datetime:
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def _journal(records: Iterable[Record]) -> str:
    return dumps([{"id": r.id, "version": r.version, "ts": iso(r.timestamp), "doc": r.doc}
                  for r in records]).decode()


def _unjournal(text: str) -> list[Record]:
    return [Record("run", e["id"], e["doc"], version=e["version"],
                   timestamp=datetime.fromisoformat(e["ts"])) for e in orjson.loads(text)]


class CycleRunner:
    """Long-lived probe state (TLS contexts, caches, run tracker) and the cycle itself."""

    def __init__(self, config: Config, clock: ScenarioClock | Clock, tracker: RunTracker,
                 sinks: Sequence[Sink], probes: Probes | None = None) -> None:
        self.config = config
        self.clock = clock
        self.probes = probes or Probes()
        self.tracker = tracker
        self.sinks = list(sinks)
        self.contexts = tls_contexts(config.tls_ca_file)
        self.netinfo = NetinfoTable.load(config.netinfo_table) if config.netinfo_table else None
        self.rdns = None
        if config.rdns_enabled and config.rdns_resolver:
            self.rdns = ReverseLookup(config.rdns_resolver, config.timeouts.dns,
                                      now=lambda: self.clock.now().timestamp())
        self.cycles = 0
        self._last_start: datetime | None = None

    async def open(self) -> None:
        for sink in self.sinks:
            await sink.open()
        pending = self.tracker.journal()
        if pending is not None:
            # The previous process died between committing a cycle's state and confirming its
            # write: its run summaries are sent again (same ids and versions, so at most a
            # repeated line in the ndjson store, a no-op in Elasticsearch).
            records = _unjournal(pending)
            log.warning("re-sending %d run summaries of a cycle whose write was not confirmed",
                        len(records))
            try:
                await self._deliver(records)
            except Exception:
                log.exception("re-sending the journalled run summaries failed; kept for later")
            else:
                self.tracker.clear_journal()

    async def _deliver(self, records: list[Record]) -> None:
        for sink in self.sinks:
            await sink.write(records)
        for sink in self.sinks:
            if not getattr(sink, "durable_writes", False):
                await sink.flush()

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
            try:
                result = await self.probes.dns(resolver, target.name, rtype,
                                               self.config.timeouts.dns,
                                               keep_raw=self.config.keep_raw_answers,
                                               ssl_context=self.contexts[0])
            except Exception as exc:  # defence in depth: probes classify, they should not raise
                log.exception("DNS probe of %s %s via %s raised", target.name, rtype,
                              resolver.name)
                result = DnsResult(resolver, target.name, rtype, error_type=CRASHED,
                                   error_message=_crash_message(exc))
        return _Query(target, rtype, resolver, at, result)

    async def _connect(self, sem: asyncio.Semaphore, address: str, target: Target
                       ) -> ConnectResult:
        t = self.config.timeouts
        async with sem:
            try:
                return await self.probes.connect(address, target.port, target.server_name,
                                                 self.contexts, t.connect, t.tls,
                                                 target.http_path, t.http)
            except Exception as exc:
                log.exception("connect probe of %s:%s raised", address, target.port)
                return ConnectResult(address, target.port, target.server_name,
                                     error_type=CRASHED, error_message=_crash_message(exc))

    async def _reverse(self, sem: asyncio.Semaphore, address: str) -> RdnsResult:
        async with sem:
            try:
                if self.probes.ptr is not None:
                    return await self.probes.ptr(address)
                assert self.rdns is not None
                return await self.rdns.lookup(address)
            except Exception:
                log.exception("reverse lookup of %s raised", address)
                return RdnsResult(address, None, error_type=CRASHED)

    @property
    def reverse_enabled(self) -> bool:
        return self.rdns is not None or self.probes.ptr is not None

    def _clock_behind(self, now: datetime) -> float:
        """Seconds the clock reads at or before the latest instant already recorded (0 if not).

        That instant is this process's previous cycle or the newest sighting of an open run (so
        it survives a restart). A clock that jumped backward (an NTP step, a scenario clock
        restarted with an earlier start) would otherwise reuse a cycle's ids and give runs a
        sighting before their last one.
        """
        floor = self._last_start
        for run in self.tracker.open_runs():
            if floor is None or run.last_seen > floor:
                floor = run.last_seen
        if floor is None or _ms(now) > _ms(floor):  # ids and stamps have ms resolution
            return 0.0
        return (floor - now).total_seconds() or 0.001

    def _netinfo(self, address: str) -> NetInfo:
        if self.netinfo is not None:
            return self.netinfo.lookup(address)
        return NetInfo(address, None, None, None, prefix24(address))

    async def run_cycle(self) -> CycleStats:
        cpu0, real0 = time.process_time(), time.perf_counter()
        started = self.clock.now()
        stats = CycleStats(started=started)
        behind = self._clock_behind(started)
        if behind:
            # Measuring now would stamp documents out of order; the cycle is skipped (nothing
            # written, run state untouched) until the clock passes the last recorded instant.
            # A forward jump needs nothing: runs measured across it are a long gap, as they are.
            log.warning("skipping the cycle at %s: the clock jumped back %.3fs behind the last "
                        "recorded instant", iso(started), behind)
            stats.clock_behind_s = behind
            stats.real_seconds = time.perf_counter() - real0
            return stats
        cfg = self.config
        sem = asyncio.Semaphore(cfg.limits.concurrency)
        cap = cfg.limits.max_addresses
        cycle_id = hashlib.sha1(f"{cfg.observer_name}|{iso(started)}".encode(),
                                usedforsecurity=False).hexdigest()[:20]

        # Connectivity checks start as soon as the first resolver returns an address, so a
        # dead resolver's timeout and a black-holed edge's timeout overlap instead of adding up.
        connect_tasks: dict[tuple[str, int, str], asyncio.Task[ConnectResult]] = {}
        ptr_tasks: dict[str, asyncio.Task[RdnsResult]] = {}
        query_tasks: list[asyncio.Task[_Query]] = []

        async with asyncio.TaskGroup() as tg:
            async def ask(target: Target, rtype: str, resolver: Resolver) -> _Query:
                q = await self._query(sem, target, rtype, resolver)
                # Only the first ``cap`` addresses, in the resolver's order, are checked.
                for a in q.result.addresses[:cap] if q.result.ok else ():
                    key = (a.address, target.port, target.server_name)
                    if key not in connect_tasks:
                        connect_tasks[key] = tg.create_task(
                            self._connect(sem, a.address, target))
                    if self.reverse_enabled and a.address not in ptr_tasks:
                        ptr_tasks[a.address] = tg.create_task(self._reverse(sem, a.address))
                return q

            for target in cfg.targets:
                for rtype in target.record_types:
                    for resolver in cfg.resolvers:
                        query_tasks.append(tg.create_task(ask(target, rtype, resolver)))
        queries = [t.result() for t in query_tasks]
        stats.queries = len(queries)
        connects = {k: t.result() for k, t in connect_tasks.items()}
        rdns = {a: t.result() for a, t in ptr_tasks.items()}
        addresses = {k[0] for k in connects}
        for q in queries:
            if q.result.ok:
                addresses.update(a.address for a in q.result.addresses)
        netinfo = {a: self._netinfo(a) for a in addresses}
        stats.addresses, stats.connects = len(addresses), len(connects)

        records: list[Record] = []
        changed_runs: dict[str, Run] = {}
        namespace = cfg.elasticsearch.namespace if cfg.elasticsearch is not None else "default"
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
                               q.target.port, namespace)
            per_addr: dict[str, ConnectResult] = {}
            skipped: dict[str, str] = {}
            for a in res.addresses if res.ok else ():
                # An address beyond the cap in this answer may have been checked for another
                # resolver's answer: that check is the address's fact for this cycle.
                conn = connects.get((a.address, q.target.port, q.target.server_name))
                if conn is not None:
                    per_addr[a.address] = conn
                else:
                    skipped[a.address] = CAP_SKIPPED
            stats.skipped += len(skipped)
            docs = check_records(ctx, q.at, res, per_addr, rdns, netinfo, assignments,
                                 skipped=skipped)
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

        # The state goes first, journalled with the run summaries: a kill -9 during the write
        # then leaves a journal the next process replays, never a store ahead of the state.
        self.tracker.commit(journal=_journal(r for r in records if r.kind == "run"))
        try:
            await self._deliver(records)
        except DeliveryError as exc:  # the sink said why in one line
            log.error("not delivered, the run state of this cycle is rolled back: %s", exc)
            self.tracker.undo()
            stats.delivered = False
        except Exception:
            log.exception("a sink failed; the run state of this cycle is rolled back")
            self.tracker.undo()
            stats.delivered = False
        else:
            self.tracker.clear_journal()
        self._last_start = started
        self.cycles += 1
        stats.real_seconds = time.perf_counter() - real0
        stats.cpu_seconds = time.process_time() - cpu0
        log.info("cycle %s at %s: %d queries, %d addresses, %d connects, %d capped, "
                 "%d documents, %.3fs (cpu %.3fs)",
                 self.cycles, iso(started), stats.queries, stats.addresses, stats.connects,
                 stats.skipped, stats.documents, stats.real_seconds, stats.cpu_seconds)
        return stats

