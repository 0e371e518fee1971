"""Fault shim: a UDP/TCP proxy in front of one real resolver that misbehaves on schedule.

Real resolvers cannot be told "drop 8 % of queries" or "SERVFAIL for 45 minutes every few hours"
in scenario time, so this shim does exactly that and nothing else: in a DROP slot it swallows the
query (the client times out), in a SERVFAIL slot it answers SERVFAIL itself, otherwise it relays
bytes unchanged to the daemon behind it. The daemon never sees the faulty queries, so its own
state (and unbound's infra cache) stays healthy; the recursion and caching remain the daemon's.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.rcode

from lab.faults import DROP, SERVFAIL

log = logging.getLogger("lab.shim")


def servfail_for(data: bytes) -> bytes | None:
    """A SERVFAIL response to the query in `data` (None if it does not parse)."""
    try:
        query = dns.message.from_wire(data)
    except (dns.exception.DNSException, ValueError):
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    response.set_rcode(dns.rcode.SERVFAIL)
    return response.to_wire()


class _Upstream(asyncio.DatagramProtocol):
    """One upstream socket per client query: simplest correct way to route replies back."""

    def __init__(self, reply: Callable[[bytes], None]) -> None:
        self.reply = reply
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.reply(data)
        if self.transport is not None:
            self.transport.close()


class _Front(asyncio.DatagramProtocol):
    def __init__(self, shim: FaultShim) -> None:
        self.shim = shim
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().create_task(self.shim.relay_udp(data, addr, self))


class FaultShim:
    """Listens on `listen`, relays to `backend`, applies `fault_now()` per query."""

    def __init__(self, listen: tuple[str, int], backend: tuple[str, int],
                 fault_now: Callable[[], str | None], timeout: float = 5.0) -> None:
        self.listen = listen
        self.backend = backend
        self.fault_now = fault_now
        self.timeout = timeout
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self.counts = {DROP: 0, SERVFAIL: 0, "relayed": 0}

    def _decide(self, data: bytes) -> tuple[str, bytes | None]:
        fault = self.fault_now()
        if fault == DROP:
            self.counts[DROP] += 1
            return DROP, None
        if fault == SERVFAIL:
            self.counts[SERVFAIL] += 1
            return SERVFAIL, servfail_for(data)
        self.counts["relayed"] += 1
        return "relay", None

    async def relay_udp(self, data: bytes, addr: tuple[str, int], front: _Front) -> None:
        action, synthetic = self._decide(data)
        if front.transport is None or action == DROP:
            return
        if action == SERVFAIL:
            if synthetic is not None:
                front.transport.sendto(synthetic, addr)
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Upstream(lambda reply: front.transport.sendto(reply, addr)),  # type: ignore[union-attr]
            remote_addr=self.backend)
        transport.sendto(data)
        loop.call_later(self.timeout, transport.close)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                head = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                action, synthetic = self._decide(data)
                if action == DROP:
                    continue
                if action == SERVFAIL:
                    if synthetic is not None:
                        writer.write(struct.pack("!H", len(synthetic)) + synthetic)
                        await writer.drain()
                    continue
                if upstream is None:
                    upstream = await asyncio.open_connection(*self.backend)
                up_r, up_w = upstream
                up_w.write(head + data)
                await up_w.drain()
                rhead = await asyncio.wait_for(up_r.readexactly(2), self.timeout)
                reply = await up_r.readexactly(struct.unpack("!H", rhead)[0])
                writer.write(rhead + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, OSError):
            pass
        finally:
            writer.close()
            if upstream is not None:
                upstream[1].close()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _Front(self), local_addr=self.listen)
        self._tcp = await asyncio.start_server(self._tcp_client, *self.listen, reuse_address=True)
        log.info("fault shim %s:%d -> %s:%d", *self.listen, *self.backend)

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
