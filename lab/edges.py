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
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
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

    def __init__(self, scenario: Scenario, certs: EdgeCerts, port: int) -> None:
        self.scenario = scenario
        self.certs = certs
        self.port = port
        self._servers: list[asyncio.Server] = []
        self._sockets: list[socket.socket] = []
        self._contexts: dict[str, ssl.SSLContext] = {}

    @classmethod
    def from_run_dir(cls, scenario: Scenario, run_dir: Path, port: int) -> EdgeServer:
        return cls(scenario, existing(run_dir / "pki"), port)

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
        self._sockets += [listener, filler]

    async def start(self) -> None:
        for address in self.scenario.edge_addresses():
            behaviour = self.scenario.edge_behaviour.get(address, "ok")
            if behaviour == "refuse":
                continue
            if behaviour == "blackhole":
                self._blackhole(address)
                continue
            if behaviour == "tls_abort":
                server = await asyncio.start_server(self._abort, address, self.port,
                                                    reuse_address=True)
            else:
                server = await asyncio.start_server(self._http, address, self.port,
                                                    ssl=self._context(behaviour),
                                                    reuse_address=True, ssl_handshake_timeout=10)
            self._servers.append(server)
        log.info("edges up on port %d (%d servers)", self.port, len(self._servers))

    def close(self) -> None:
        for s in self._servers:
            s.close()
        for sock in self._sockets:
            sock.close()
