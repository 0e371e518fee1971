"""TLS edges: every edge address of the scenario, served by one asyncio process.

Behaviours (from the scenario's [edges] table; default ok):
    ok          valid lab certificate, answers HTTP (an ACME-like directory at /directory)
    wrong_name  certificate for another name        -> client sees tls.verify
    expired     certificate expired yesterday       -> tls.verify
    tls_abort   accepts TCP, closes before TLS      -> tls.handshake
    refuse      nothing bound: the kernel sends RST -> tcp.refused
    blackhole   listening socket with backlog 0 whose accept queue this process keeps full with
                one idle connection of its own; further SYNs are dropped by the kernel, so the
                client's connect times out (tcp.timeout) without any firewall rule.

``[[edges.changes]]`` switch an address to another behaviour at a scenario instant (off the
poll grid): the address's listener is closed and the new behaviour bound in its place, on a
timer of the scenario clock, so a retired edge can start refusing or present another
certificate while the lab runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from lab.pki import EdgeCerts, existing
from lab.scenario import Scenario

log = logging.getLogger("lab.edges")

def directory_json(host: str) -> bytes:
    """An ACME-like directory document, so an HTTP check has something real to fetch."""
    base = f"https://{host}"
    doc = {
        "keyChange": f"{base}/acme/key-change",
        "newAccount": f"{base}/acme/new-acct",
        "newNonce": f"{base}/acme/new-nonce",
        "newOrder": f"{base}/acme/new-order",
        "revokeCert": f"{base}/acme/revoke-cert",
        "meta": {"caaIdentities": ["lab.test"], "termsOfService": f"{base}/terms",
                 "website": "https://lab.test/"},
    }
    return json.dumps(doc, indent=2).encode()


class EdgeServer:
    """Binds every edge address on `port` according to its behaviour."""

    def __init__(self, scenario: Scenario, certs: EdgeCerts, port: int,
                 real_at: Callable[[float], float] | None = None,
                 now: Callable[[], float] | None = None) -> None:
        self.scenario = scenario
        self.certs = certs
        self.port = port
        # scenario time <-> real time, for [[edges.changes]] (default: the scenario start now)
        self._now = now or (lambda: scenario.start)
        self._real_at = real_at or (lambda t: time.time() + t - self._now())
        self._servers: dict[str, asyncio.Server] = {}
        self._sockets: dict[str, list[socket.socket]] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._timers: list[asyncio.Task[None]] = []

    @classmethod
    def from_run_dir(cls, scenario: Scenario, run_dir: Path, port: int,
                     real_at: Callable[[float], float] | None = None,
                     now: Callable[[], float] | None = None) -> EdgeServer:
        return cls(scenario, existing(run_dir / "pki"), port, real_at, now)

    def _context(self, kind: str) -> ssl.SSLContext:
        if kind not in self._contexts:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            cert, key = self.certs.leaves[kind]
            ctx.load_cert_chain(str(cert), str(key))
            ctx.set_alpn_protocols(["http/1.1"])
            self._contexts[kind] = ctx
        return self._contexts[kind]

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("sockname")[0]
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            request_line, *headers = head.decode("latin-1").split("\r\n")
            parts = request_line.split(" ")
            path = parts[1] if len(parts) > 1 else "/"
            host = next((h.split(":", 1)[1].strip() for h in headers
                         if h.lower().startswith("host:")), self.scenario.targets[0].name)
            host = host.split(":")[0]
            if path.split("?")[0] == "/directory":
                status, body = "200 OK", directory_json(host)
            else:
                status, body = "404 Not Found", b'{"type": "urn:ietf:params:acme:error:malformed"}'
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n"
                f"X-Lab-Edge: {address}\r\n\r\n".encode() + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _abort(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    def _blackhole(self, address: str) -> None:
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        listener = socket.socket(fam, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, self.port))
        listener.listen(0)
        filler = socket.create_connection((address, self.port), timeout=2)
        self._sockets[address] = [listener, filler]

    async def _bind(self, address: str, behaviour: str) -> None:
        """Serve ``behaviour`` on ``address`` (refuse: nothing bound)."""
        if behaviour == "refuse":
            return
        if behaviour == "blackhole":
            self._blackhole(address)
            return
        if behaviour == "tls_abort":
            server = await asyncio.start_server(self._abort, address, self.port,
                                                reuse_address=True)
        else:
            server = await asyncio.start_server(self._http, address, self.port,
                                                ssl=self._context(behaviour),
                                                reuse_address=True, ssl_handshake_timeout=10)
        self._servers[address] = server

    def _unbind(self, address: str) -> None:
        server = self._servers.pop(address, None)
        if server is not None:
            server.close()
        for sock in self._sockets.pop(address, []):
            sock.close()

    async def _switch_later(self, address: str, at: float, behaviour: str) -> None:
        await asyncio.sleep(max(0.0, self._real_at(at) - time.time()))
        self._unbind(address)
        await self._bind(address, behaviour)
        log.info("edge %s is now %s", address, behaviour)

    async def start(self) -> None:
        now = self._now()
        for address in self.scenario.edge_addresses():
            await self._bind(address, self.scenario.behaviour_at(address, now))
        for change in self.scenario.edge_changes:
            if change.at > now:
                self._timers.append(asyncio.create_task(
                    self._switch_later(change.address, change.at, change.behaviour)))
        log.info("edges up on port %d (%d servers, %d changes ahead)", self.port,
                 len(self._servers), len(self._timers))

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for address in list({*self._servers, *self._sockets}):
            self._unbind(address)
