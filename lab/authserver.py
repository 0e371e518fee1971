"""Authoritative DNS server transport (asyncio, UDP + TCP) around LabZone.

Kept thin on purpose: parse, ask the zone for the answer at the current scenario instant, size-limit
for UDP (TC=1 makes real resolvers retry over TCP), send. A malformed query is dropped rather than
answered, as most authoritative servers do.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

import dns.exception
import dns.message

from lab.zone import LabZone, to_wire_limited

log = logging.getLogger("lab.auth")


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, handle: Callable[[bytes, str, bool], bytes | None]) -> None:
        self.handle = handle
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.handle(data, addr[0], True)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class AuthServer:
    """Serves a LabZone on host:port over UDP and TCP; `now` gives scenario time."""

    def __init__(self, zone: LabZone, host: str, port: int, now: Callable[[], float]) -> None:
        self.zone = zone
        self.host = host
        self.port = port
        self.now = now
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def handle(self, data: bytes, source: str, udp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except (dns.exception.DNSException, ValueError):
            return None
        response = self.zone.respond(query, source, self.now())
        return to_wire_limited(query, response, udp)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        source = writer.get_extra_info("peername")[0]
        try:
            while True:
                head = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                reply = self.handle(data, source, False)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _UDP(self.handle), local_addr=(self.host, self.port))
        self._tcp = await asyncio.start_server(self._tcp_client, self.host, self.port,
                                               reuse_address=True)
        log.info("authoritative server on %s:%d", self.host, self.port)

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
