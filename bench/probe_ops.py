"""Workload 3: single operations done by edgewatch's probes, and the pieces of one probe.

Everything goes through the probes object (``Probes``) bound to the benchmark's workload: the same
timeouts, CA and connect spec as a cycle, and the same question and answer classification.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable

from probe_common import HTTP_PATH, OpFigures, Work, cpu_us, drive_async

from pipeline.config import Target, Timeouts
from pipeline.probe.connect import describe_certificate
from pipeline.probe.dns_read import read_message
from pipeline.probe.dns_wire import new_id, query_wire
from pipeline.probe.probes import Probes, ProbeSettings


def probes_for(work: Work) -> Probes:
    """The probes bound to the workload's timeouts and CA (no PTR lookups)."""
    timeouts = Timeouts(work.dns_timeout, work.connect_timeout, work.tls_timeout,
                        work.http_timeout)
    return Probes(settings=ProbeSettings.adhoc(timeouts, work.ca, None))


def _target(work: Work, http_path: str | None = None) -> Target:
    return Target(work.qname, port=work.port, sni=work.server_name, http_path=http_path)


def ew_op(work: Work, op: str) -> Callable[[], Awaitable[tuple[bool, str | None]]]:
    probes = probes_for(work)
    tls_target, http_target = _target(work), _target(work, HTTP_PATH)

    async def dns() -> tuple[bool, str | None]:
        r = await probes.dns(work.resolver, work.qname, "A")
        return r.ok, r.error_type

    async def tls() -> tuple[bool, str | None]:
        r = await probes.connect(work.edge, tls_target)
        return r.ok and r.tls_verified, r.error_type

    async def https() -> tuple[bool, str | None]:
        r = await probes.connect(work.edge, http_target)
        return r.ok and r.http_status == 200, r.error_type

    return {"dns": dns, "tls": tls, "http": https}[op]


def ew_ops(work: Work, op: str, n: int, concurrency: int, deadline: float,
           warmup: int = 10) -> OpFigures:
    async def main() -> OpFigures:
        one = ew_op(work, op)
        for _ in range(warmup):
            await one()
        fig = OpFigures("edgewatch", op, n, concurrency=concurrency)
        return await drive_async(fig, one, deadline)

    return asyncio.run(main())


def breakdown(work: Work, n: int, deadline: float) -> list[tuple[str, float, int]]:
    """CPU of the pieces a probe is made of, each alone, in this process."""
    import dns.message
    import dns.query

    probes = probes_for(work)
    rows: list[tuple[str, float, int]] = []
    query = probes.question(work.qname, "A", work.resolver)
    response = dns.query.udp(query, work.resolver.address, port=work.resolver.port,
                             timeout=work.dns_timeout * 5)
    wire = response.to_wire()
    rows.append(("dns: make_query + to_wire",
                 *cpu_us(lambda: probes.question(work.qname, "A", work.resolver).to_wire(), n,
                         deadline)))
    rows.append((f"dns: message.from_wire of the answer ({len(wire)} B, "
                 f"{sum(len(r) for r in response.answer)} RRs)",
                 *cpu_us(lambda: dns.message.from_wire(wire), n, deadline)))
    rows.append(("dns: classify the answer (chain, addresses)", *cpu_us(
        lambda: probes.classify(response, work.qname, "A"), n, deadline)))
    rows.append(("dns: cached wire form + fresh id (query_wire, with_id)", *cpu_us(
        lambda: query_wire(work.qname, "A", work.resolver.client_subnet).with_id(new_id()), n,
        deadline)))
    rows.append(("dns: fast reader of the same answer (dns_read.read_message)", *cpu_us(
        lambda: read_message(wire), n, deadline)))
    fast = read_message(wire)
    rows.append(("dns: classify the fast reader's answer", *cpu_us(
        lambda: probes.classify(fast, work.qname, "A"), n, deadline)))
    rows.append(("dns: blocking dns.query.udp (socket + send + recv + parse)", *cpu_us(
        lambda: dns.query.udp(query, work.resolver.address, port=work.resolver.port,
                              timeout=work.dns_timeout), n // 4, deadline)))
    assert probes.settings is not None
    contexts = probes.settings.connect.contexts
    target = _target(work)

    def blocking_tls() -> bytes:
        with socket.create_connection((work.edge, work.port), work.connect_timeout) as raw, \
                contexts[0].wrap_socket(raw, server_hostname=work.server_name) as tls:
            return tls.getpeercert(binary_form=True) or b""

    der = blocking_tls()
    rows.append(("tls: describe_certificate (x509 parse, SAN, sha256)",
                 *cpu_us(lambda: describe_certificate(der), n, deadline)))
    rows.append(("tls: blocking socket + ssl.wrap_socket handshake",
                 *cpu_us(blocking_tls, n // 4, deadline)))

    async def async_tls() -> list[tuple[str, float, int]]:
        async def plain() -> None:
            _r, w = await asyncio.open_connection(work.edge, work.port, ssl=contexts[0],
                                                  server_hostname=work.server_name)
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()

        async def probe() -> None:
            await probes.connect(work.edge, target)

        out = []
        for label, fn in (("tls: asyncio open_connection(ssl=…) + close", plain),
                          ("tls: probe_connect (connect, handshake, facts, close)", probe)):
            done = 0
            t0 = time.process_time()
            while done < n // 4 and time.monotonic() < deadline:
                await fn()
                done += 1
            out.append((label, (time.process_time() - t0) / max(done, 1) * 1e6, done))
        return out

    rows += asyncio.run(async_tls())
    return rows
