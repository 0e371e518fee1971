"""Small helpers shared by the live lab tests: plain dnspython polling on the scenario grid."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import dns.asyncquery
import dns.edns
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from lab.daemons import pdns
from lab.stack import LabStack
from lab.truth import TruthAnswer


def control_dirs_outside(run_dir: Path) -> list[Path]:
    """The folders pdns instances of the lab in ``run_dir`` keep outside it (their workdir's
    path is too long for a control socket): every one of them must be gone once it stops."""
    resolvers = Path(run_dir).resolve() / "resolvers"
    return [pdns.control_dir_of(w) for w in sorted(resolvers.iterdir())
            if (w / "recursor.conf").exists() and pdns.control_dir_of(w) != w]


def query(name: str, rdtype: str = "A", ecs: str | None = None) -> dns.message.Message:
    options = []
    if ecs is not None:
        address, prefix = ecs.split("/")
        options.append(dns.edns.ECSOption(address, int(prefix)))
    return dns.message.make_query(name, rdtype, use_edns=0, options=options)


def a_addresses(reply: dns.message.Message) -> frozenset[str]:
    return frozenset(rr.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A
                     for rr in rrset)


async def poll_once(host: str, port: int, name: str, ecs: str | None,
                    timeout: float) -> TruthAnswer:
    """One poll as an observer records it, in the truth's terms."""
    try:
        reply = await dns.asyncquery.udp(query(name, ecs=ecs), host, port=port, timeout=timeout)
    except dns.exception.Timeout:
        return TruthAnswer(frozenset(), None, "dns.timeout")
    rcode = dns.rcode.to_text(reply.rcode())
    if rcode == "SERVFAIL":
        return TruthAnswer(frozenset(), rcode, "dns.servfail")
    return TruthAnswer(a_addresses(reply), rcode, None)


def next_grid(lab: LabStack, lead_real: float = 0.4) -> float:
    """The first grid instant at least `lead_real` real seconds from now (scenario seconds)."""
    assert lab.clock is not None
    grid = lab.scenario.grid
    earliest = lab.clock.now() + lead_real * lab.clock.speed
    return lab.scenario.start + math.ceil((earliest - lab.scenario.start) / grid) * grid


async def poll_grid(lab: LabStack, times: list[float], timeout: float = 0.3
                    ) -> dict[tuple[str, str], list[TruthAnswer]]:
    """Poll every resolver for every target at each scenario instant in `times`."""
    assert lab.clock is not None
    out: dict[tuple[str, str], list[TruthAnswer]] = {}
    tasks: dict[tuple[str, str], list[asyncio.Task]] = {}
    for t in times:
        await asyncio.sleep(max(0.0, lab.clock.real_at(t) - time.time()))
        for r in lab.scenario.resolvers:
            host, port = lab.resolvers[r.name]
            ecs = str(r.client_subnet) if r.client_subnet else None
            for target in lab.scenario.targets:
                task = asyncio.create_task(poll_once(host, port, target.name, ecs, timeout))
                tasks.setdefault((r.name, target.name), []).append(task)
    for key, ts in tasks.items():
        out[key] = [await task for task in ts]
    return out
