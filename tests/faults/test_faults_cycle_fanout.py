"""The cycle's fan-out under faults: a probe that raises, an answer of 254 addresses, clock jumps.

The probes are injected (``Probes``) so a raising probe costs milliseconds and no network; the
254-address answer comes from a real UDP/TCP DNS peer on 127.0.0.1 whose addresses are loopback
addresses on a closed port.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from faults_cycle_helpers import DnsPeer, closed_port, loopback_addresses, write_config

from pipeline.config import Config, Resolver, Target, load_config
from pipeline.cycle import CRASHED, CycleRunner, CycleStats, Probes, cycle_budget
from pipeline.probe.connect import ConnectResult
from pipeline.probe.dns import AnswerAddress, DnsResult
from pipeline.runs import RunTracker
from pipeline.sinks.ndjson import NdjsonSink, read_store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock a test moves by hand (forward or backward)."""

    def __init__(self, now: datetime) -> None:
        self.t = now

    def now(self) -> datetime:
        return self.t


def _config(tmp_path: Path, targets: tuple[str, ...], **kw):
    path = write_config(tmp_path, 53, target_port=closed_port(), targets=targets, **kw)
    return load_config(path, env={})


def _answer(resolver: Resolver, qname: str, rtype: str, *addresses: str) -> DnsResult:
    return DnsResult(resolver, qname, rtype, rcode="NOERROR",
                     addresses=tuple(AnswerAddress(a, 60) for a in addresses))



async def _one_cycle(cfg: Config, store: Path, probes: Probes) -> CycleStats:
    """One cycle of a fresh runner into an ndjson store at ``store``; its stats."""
    runner = CycleRunner(cfg, FakeClock(T0), RunTracker(), [NdjsonSink(store)], probes=probes)
    await runner.open()
    stats = await runner.run_cycle()
    await runner.close()
    return stats

async def test_a_raising_probe_costs_only_its_own_query_and_address(tmp_path: Path) -> None:
    cfg = _config(tmp_path, ("good.faults.test", "slow.faults.test", "bad.faults.test"))
    addresses = {"good.faults.test": ("127.0.0.10", "127.0.0.11"),
                 "slow.faults.test": ("127.0.0.12",)}

    async def dns(resolver, qname, rtype, timeout, **kw):
        if qname == "bad.faults.test":
            raise AttributeError("'GenericRdata' object has no attribute 'target'")
        if qname == "slow.faults.test":
            await asyncio.sleep(0.2)  # still running when the bad one raises
        return _answer(resolver, qname, rtype, *addresses[qname])

    async def connect(address, port, server_name, *args):
        if address == "127.0.0.11":
            raise TypeError("an integer is required")
        await asyncio.sleep(0.05)
        return ConnectResult(address, port, server_name, tcp_established=True,
                             tls_established=True)

    store = tmp_path / "data"
    stats = await _one_cycle(cfg, store, Probes(dns=dns, connect=connect))
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == [], f"tasks left pending: {others}"

    docs = {(d["dns.question.name"], d.get("destination.ip")): d for d in read_store(store)}
    assert set(docs) == {("good.faults.test", "127.0.0.10"), ("good.faults.test", "127.0.0.11"),
                         ("slow.faults.test", "127.0.0.12"), ("bad.faults.test", None)}
    bad = docs[("bad.faults.test", None)]
    assert bad["error.type"] == CRASHED and bad["event.outcome"] == "failure"
    assert bad["error.message"].startswith("AttributeError")
    crashed = docs[("good.faults.test", "127.0.0.11")]
    assert crashed["error.type"] == CRASHED and crashed["error.message"].startswith("TypeError")
    for ok in (("good.faults.test", "127.0.0.10"), ("slow.faults.test", "127.0.0.12")):
        assert docs[ok]["event.outcome"] == "success" and docs[ok]["tls.established"] is True
    assert stats.failures[CRASHED] == 2 and stats.delivered
    assert {r["edgewatch.run.id"] for r in read_store(store, "runs")} == {
        d["edgewatch.run.id"] for d in docs.values() if "edgewatch.run.id" in d}


async def test_an_answer_of_254_addresses_gets_exactly_cap_connects(tmp_path: Path) -> None:
    cap = 32
    with DnsPeer(loopback_addresses(254)) as peer:
        cfg = load_config(write_config(tmp_path, peer.port, target_port=closed_port(),
                                       max_addresses=cap, dns_timeout=2.0), env={})
        connected: list[str] = []

        async def counting_connect(address, *args):
            from pipeline.probe.connect import probe_connect

            connected.append(address)
            return await probe_connect(address, *args)

        store = tmp_path / "data"
        tracker = RunTracker()
        runner = CycleRunner(cfg, FakeClock(T0), tracker, [NdjsonSink(store)],
                             probes=Probes(connect=counting_connect))
        await runner.open()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        stats = await runner.run_cycle()
        elapsed = loop.time() - t0
        await runner.close()
    docs = list(read_store(store))
    assert len(docs) == 254 and len({d["destination.ip"] for d in docs}) == 254
    answer = docs[0]["dns.resolved_ip"]
    assert len(answer) == 254
    assert len(connected) == cap and connected == answer[:cap]  # the first ones, resolver order
    by_ip = {d["destination.ip"]: d for d in docs}
    for ip in answer[:cap]:
        assert by_ip[ip]["error.type"] == "tcp.refused" and "edgewatch.connect.skipped" not in \
            by_ip[ip]
    for ip in answer[cap:]:
        d = by_ip[ip]
        assert d["edgewatch.connect.skipped"] == "cap" and "edgewatch.tcp.established" not in d
        # DNS alone; run recorded
        assert d["event.outcome"] == "success" and "edgewatch.run.id" in d
    assert stats.connects == cap and stats.skipped == 254 - cap and stats.addresses == 254
    assert len(list(read_store(store, "runs"))) == 254
    assert elapsed < cycle_budget(cfg)  # bounded by the budget its own limits give it


async def test_a_capped_address_checked_for_another_resolver_keeps_that_check(
        tmp_path: Path) -> None:
    cfg = _config(tmp_path, ("api.faults.test",), max_addresses=1, resolvers=2)
    order = {"peer-0": ("127.0.0.20", "127.0.0.21"), "peer-1": ("127.0.0.21", "127.0.0.20")}

    async def dns(resolver, qname, rtype, timeout, **kw):
        return _answer(resolver, qname, rtype, *order[resolver.name])

    async def connect(address, port, server_name, *args):
        return ConnectResult(address, port, server_name, tcp_established=True,
                             tls_established=True)

    store = tmp_path / "data"
    stats = await _one_cycle(cfg, store, Probes(dns=dns, connect=connect))
    assert stats.connects == 2 and stats.skipped == 0
    assert all(d["tls.established"] for d in read_store(store))


async def test_clock_jumps_never_reuse_cycle_ids_nor_give_negative_runs(tmp_path: Path) -> None:
    cfg = _config(tmp_path, ("api.faults.test",))
    cfg = replace(cfg, targets=(Target("api.faults.test", port=closed_port()),))

    async def dns(resolver, qname, rtype, timeout, **kw):
        return _answer(resolver, qname, rtype, "127.0.0.30")

    async def connect(address, port, server_name, *args):
        return ConnectResult(address, port, server_name, tcp_established=True,
                             tls_established=True)

    store = tmp_path / "data"
    db = tmp_path / "state" / "runs.sqlite3"
    clock = FakeClock(T0)
    probes = Probes(dns=dns, connect=connect)
    runner = CycleRunner(cfg, clock, RunTracker(db), [NdjsonSink(store)], probes=probes)
    await runner.open()
    written = []
    for now in (T0, T0 + timedelta(minutes=15),  # normal
                T0 - timedelta(hours=1),          # backward jump: skipped
                T0 + timedelta(minutes=15),       # the very same instant again: skipped
                T0 + timedelta(minutes=30),       # past it again: measured
                T0 + timedelta(days=10)):         # forward jump: a long, positive run
        clock.t = now
        stats = await runner.run_cycle()
        written.append(stats.documents)
        assert (stats.clock_behind_s > 0) == (stats.documents == 0)
    await runner.close()
    assert written[2] == written[3] == 0 and all(written[i] > 0 for i in (0, 1, 4, 5))

    # The skip survives a restart: the open runs' newest sighting is the floor.
    clock.t = T0 + timedelta(days=9)
    again = CycleRunner(cfg, clock, RunTracker(db), [NdjsonSink(store)], probes=probes)
    await again.open()
    assert (await again.run_cycle()).clock_behind_s == 86400
    await again.close()

    checks = list(read_store(store))
    cycle_ids = [d["edgewatch.cycle.id"] for d in checks]
    assert len(cycle_ids) == len(set(cycle_ids)) == 4
    stamps = [d["@timestamp"] for d in checks]
    assert stamps == sorted(stamps)
    runs = list(read_store(store, "runs"))
    # one run throughout
    assert {r["edgewatch.run.id"] for r in runs} == {checks[0]["edgewatch.run.id"]}
    assert all(r["edgewatch.run.duration.s"] >= 0 and r["edgewatch.run.observed.s"] >= 0
               for r in runs)
    assert max(r["edgewatch.run.observed.s"] for r in runs) == 10 * 86400
