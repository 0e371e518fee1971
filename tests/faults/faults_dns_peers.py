"""Hostile DNS peers on loopback: a UDP+TCP server whose every reply is chosen by the test.

``dns_peer(udp=handler, tcp=handler)`` starts a server on 127.0.0.1 (or ``host="::1"``), one
ephemeral port shared by UDP and TCP, in its own thread and event loop, so it serves synchronous
callers (a CLI run, an ``asyncio.run`` in the test) and async ones alike, and yields a
:class:`DnsPeer` with ``host`` and ``port``. A handler gets each :class:`Request` and returns the
:class:`Reply` list to send (empty: stay silent); each reply has an offset from the request's
arrival, may come from another source port (UDP), be written unframed or close the connection
(TCP). ``tcp=None`` means no TCP listener at all, ``udp=None`` no UDP socket.

Answers are built byte by byte (:func:`response`, :class:`RR`) so a test can send what no
well-behaved library would produce: CH-class A records, rdata of the wrong length, TTLs of 2^31
and more, compression loops, truncated messages.

Example, for a cycle test that needs "a resolver whose answers are all of class CH"::

    with dns_peer(lambda r: [Reply(response(r, [RR(r.qname, "A", a("192.0.2.1"),
                                                   rclass="HS")]))]) as peer:
        config = ... Resolver("hostile", peer.host, peer.port) ...
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
from ports import udp_and_tcp_on_one_port

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Request:
    wire: bytes
    query: dns.message.Message | None  # None: the request itself did not parse
    transport: str  # "udp" | "tcp"

    @property
    def id(self) -> int:
        return struct.unpack("!H", self.wire[:2])[0] if len(self.wire) >= 2 else 0

    @property
    def qname(self) -> str:
        assert self.query is not None and self.query.question
        return self.query.question[0].name.to_text()

    @property
    def qtype(self) -> int:
        assert self.query is not None and self.query.question
        return int(self.query.question[0].rdtype)


@dataclass(frozen=True, slots=True)
class Reply:
    wire: bytes
    at: float = 0.0  # seconds after the request arrived
    other_source: bool = False  # UDP: send from another port of the peer's address
    framed: bool = True  # TCP: prefix the two-byte length
    close: bool = False  # TCP: close the connection after this reply


Handler = Callable[[Request], Sequence[Reply]]


@dataclass(frozen=True, slots=True)
class RR:
    """One resource record, encoded without compression (``rdata`` as raw bytes)."""

    name: str
    rtype: int | str
    rdata: bytes
    ttl: int = 60
    rclass: int | str = "IN"

    def to_wire(self) -> bytes:
        rtype = dns.rdatatype.from_text(self.rtype) if isinstance(self.rtype, str) else self.rtype
        rclass = (dns.rdataclass.from_text(self.rclass) if isinstance(self.rclass, str)
                  else self.rclass)
        return (name_wire(self.name) + struct.pack("!HHIH", rtype, rclass, self.ttl,
                                                   len(self.rdata)) + self.rdata)


def name_wire(name: str) -> bytes:
    return dns.name.from_text(name).to_wire()


def a(address: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, address)


def aaaa(address: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, address)


def header(rid: int, flags: int = 0x8180, qd: int = 1, an: int = 0, ns: int = 0,
           ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", rid, flags, qd, an, ns, ar)


def question(qname: str, qtype: int, qclass: int = 1) -> bytes:
    return name_wire(qname) + struct.pack("!HH", qtype, qclass)


def response(req: Request, answers: Sequence[RR] = (), rcode: int = 0, tc: bool = False,
             rid: int | None = None, qname: str | None = None, qtype: int | None = None
             ) -> bytes:
    """A response to ``req`` (its id and question unless overridden)."""
    flags = 0x8180 | (0x0200 if tc else 0) | (rcode & 0xF)
    return (header(req.id if rid is None else rid, flags, 1, len(answers))
            + question(qname or req.qname, qtype if qtype is not None else req.qtype)
            + b"".join(rr.to_wire() for rr in answers))


def addresses_reply(*addresses: str, ttl: int = 60, at: float = 0.0) -> Handler:
    """A handler answering every A/AAAA question with these addresses at the question name."""
    def handle(req: Request) -> list[Reply]:
        rrs = [RR(req.qname, "AAAA" if ":" in x else "A", aaaa(x) if ":" in x else a(x), ttl)
               for x in addresses]
        return [Reply(response(req, rrs), at=at)]
    return handle


def silent(req: Request) -> list[Reply]:
    return []


@dataclass
class DnsPeer:
    host: str
    port: int
    requests: list[Request] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def closed_udp_port(host: str = HOST) -> int:
    """A UDP port nobody listens on right now (bound, then released)."""
    with socket.socket(_family(host), socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _bind_pair(host: str, want_tcp: bool) -> tuple[socket.socket, socket.socket | None]:
    """A UDP socket and (optionally) a TCP listener on the same ephemeral port."""
    if not want_tcp:
        udp = socket.socket(_family(host), socket.SOCK_DGRAM)
        udp.bind((host, 0))
        return udp, None
    udp, tcp = udp_and_tcp_on_one_port(host)
    tcp.listen(16)
    return udp, tcp


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, peer: DnsPeer, handler: Handler, sock: socket.socket,
                 spoofer: socket.socket) -> None:
        self.peer, self.handler, self.sock, self.spoofer = peer, handler, sock, spoofer

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        req = _request(data, "udp")
        self.peer.requests.append(req)
        loop = asyncio.get_running_loop()
        for reply in self.handler(req):
            loop.call_later(reply.at, self._send, reply, addr)

    def _send(self, reply: Reply, addr: tuple[str, int]) -> None:
        # the raw socket, because asyncio's transport silently drops an empty datagram
        sock = self.spoofer if reply.other_source else self.sock
        with contextlib.suppress(OSError):
            sock.sendto(reply.wire, addr)


def _request(data: bytes, transport: str) -> Request:
    try:
        query: dns.message.Message | None = dns.message.from_wire(data)
    except Exception:
        query = None
    return Request(data, query, transport)


async def _serve_tcp(peer: DnsPeer, handler: Handler, open_writers: set[asyncio.StreamWriter],
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    loop = asyncio.get_running_loop()
    open_writers.add(writer)
    try:
        while True:
            (n,) = struct.unpack("!H", await reader.readexactly(2))
            data = await reader.readexactly(n)
            arrived = loop.time()
            req = _request(data, "tcp")
            peer.requests.append(req)
            for reply in handler(req):
                await asyncio.sleep(max(0.0, arrived + reply.at - loop.time()))
                writer.write(struct.pack("!H", len(reply.wire)) + reply.wire if reply.framed
                             else reply.wire)
                await writer.drain()
                if reply.close:
                    return
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        open_writers.discard(writer)
        writer.close()


@contextlib.contextmanager
def dns_peer(udp: Handler | None = silent, tcp: Handler | None = None,
             host: str = HOST) -> Iterator[DnsPeer]:
    """Run a hostile DNS server for the ``with`` block; ``udp=None`` leaves UDP unbound."""
    udp_sock, tcp_sock = _bind_pair(host, tcp is not None)
    port = udp_sock.getsockname()[1]
    if udp is None:
        udp_sock.close()
    peer = DnsPeer(host, port)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None
    spoofer = socket.socket(_family(host), socket.SOCK_DGRAM)
    spoofer.bind((host, 0))
    failure: list[BaseException] = []

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        transports: list[asyncio.BaseTransport] = []
        open_writers: set[asyncio.StreamWriter] = set()
        server = None
        try:
            if udp is not None:
                t, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpServer(peer, udp, udp_sock, spoofer), sock=udp_sock)
                transports.append(t)
            if tcp is not None and tcp_sock is not None:
                server = await asyncio.start_server(
                    lambda r, w: _serve_tcp(peer, tcp, open_writers, r, w), sock=tcp_sock)
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            raise
        ready.set()
        await stop.wait()
        for t in transports:
            t.close()
        if server is not None:
            server.close()
        for w in list(open_writers):  # ends the connection handlers' reads: no cancellation
            w.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if others:
            _, pending = await asyncio.wait(others, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True,
                              name=f"dns-peer-{port}")
    thread.start()
    ready.wait(10)
    if failure:
        raise RuntimeError(f"DNS peer failed to start: {failure[0]!r}")
    try:
        yield peer
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
        spoofer.close()
