"""Peers and configs for the cycle / process fault tests: everything on loopback.

``DnsPeer`` is a tiny dnspython UDP responder on 127.0.0.1 (ephemeral port) that answers every A
question with a configured list of addresses, optionally after a delay, and counts the queries it
received, so a test can tell that a cycle is in flight before it signals the process. The
addresses it hands out are 127.x addresses on a port nothing listens on: a connect is refused at
once and nothing ever leaves loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import orjson
from faults_dns_peers import Reply, Request, dns_peer

ROOT = Path(__file__).resolve().parents[2]
EDGEWATCH = str(ROOT / ".venv" / "bin" / "edgewatch")


def closed_port() -> int:
    """A TCP port on loopback that nothing listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_addresses(n: int) -> list[str]:
    """``n`` distinct addresses 127.0.x.y (y in 1..254), in a fixed order."""
    return [f"127.0.{1 + i // 254}.{1 + i % 254}" for i in range(n)]


class DnsPeer:
    """A resolver on 127.0.0.1 handing out a pool of addresses: the DNS fault peer
    (``faults_dns_peers.dns_peer``) with a pool answer. Each UDP query may wait ``delay`` (+ up
    to ``jitter``) seconds; an answer too big for the client's UDP buffer is truncated (TC) and
    served whole over TCP, as a real server does."""

    def __init__(self, addresses: list[str], delay: float = 0.0, ttl: int = 60,
                 jitter: float = 0.0, rotate: float | None = None, window: int = 3) -> None:
        """``rotate``: every that many real seconds the answer moves on to another ``window``
        of the addresses, so runs start and end."""
        self.addresses = list(addresses)
        self.rotate, self.window = rotate, window
        self.delay, self.jitter, self.ttl = delay, jitter, ttl
        self._stack = contextlib.ExitStack()
        self._peer: Any = None
        self.port = 0

    def __enter__(self) -> DnsPeer:
        self._peer = self._stack.enter_context(dns_peer(self._udp, tcp=self._tcp))
        self.port = self._peer.port
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def queries(self) -> int:
        """UDP queries that arrived so far (a TCP retry is not a new query)."""
        return sum(1 for r in self._peer.requests if r.transport == "udp")

    def wait_queries(self, n: int, timeout: float) -> bool:
        """Wait until at least ``n`` queries arrived in total."""
        deadline = time.monotonic() + timeout
        while self.queries < n:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def answer(self) -> list[str]:
        if self.rotate is None:
            return self.addresses
        step = int(time.time() / self.rotate)
        n = len(self.addresses)
        return [self.addresses[(step + i) % n] for i in range(min(self.window, n))]

    def _response(self, req: Request) -> dns.message.Message | None:
        if req.query is None or not req.query.question:
            return None
        reply = dns.message.make_response(req.query)
        q = req.query.question[0]
        if q.rdtype == dns.rdatatype.A and self.addresses:
            reply.answer.append(dns.rrset.from_text_list(q.name, self.ttl, "IN", "A",
                                                         self.answer()))
        return reply

    def _udp(self, req: Request) -> list[Reply]:
        reply = self._response(req)
        if reply is None:
            return []
        at = self.delay + (random.uniform(0, self.jitter) if self.jitter else 0.0)
        try:
            wire = reply.to_wire(max_size=max(512, req.query.payload))
        except dns.exception.TooBig:
            reply.answer.clear()
            reply.flags |= dns.flags.TC
            wire = reply.to_wire()
        return [Reply(wire, at=at)]

    def _tcp(self, req: Request) -> list[Reply]:
        reply = self._response(req)
        return [] if reply is None else [Reply(reply.to_wire(max_size=65535))]


def write_config(directory: Path, dns_port: int, *, target_port: int, interval: str = "15m",
                 speed: float | None = None, dns_timeout: float = 3.0, connect: float = 0.5,
                 tls: float = 0.5, http: float = 0.5, max_addresses: int | None = None,
                 targets: tuple[str, ...] = ("api.faults.test",), resolvers: int = 1) -> Path:
    """An edgewatch config: the peer as resolver(s); ndjson store and state under ``directory``."""
    lines = ["[observer]", 'name = "faults-observer"', "", "[schedule]",
             f'interval = "{interval}"', 'jitter = "0s"', ""]
    if speed is not None:
        lines += ["[clock]", 'start = "2026-03-01T00:00:00Z"', f"anchor = {time.time()!r}",
                  f"speed = {speed!r}", ""]
    lines += ["[timeouts]", f"dns = {dns_timeout!r}", f"connect = {connect!r}",
              f"tls = {tls!r}", f"http = {http!r}", ""]
    if max_addresses is not None:
        lines += ["[limits]", f"max_addresses = {max_addresses}", ""]
    lines += ["[rdns]", "enabled = false", "",
              "[state]", f"dir = {json.dumps(str(directory / 'state'))}", "",
              "[store]", f"dir = {json.dumps(str(directory / 'data'))}", "",
              "[sinks]", 'enabled = ["ndjson"]', ""]
    for name in targets:
        lines += ["[[targets]]", f"name = {json.dumps(name)}", 'record_types = ["A"]',
                  f"port = {target_port}", ""]
    for i in range(resolvers):
        lines += ["[[resolvers]]", f'name = "peer-{i}"', 'address = "127.0.0.1"',
                  f"port = {dns_port}", ""]
    path = directory / "edgewatch.toml"
    path.write_text("\n".join(lines))
    return path


def start_run(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    return subprocess.Popen([EDGEWATCH, "run", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 60.0
         ) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def store_lines(store: Path, kind: str) -> list[dict[str, Any]]:
    """Every parseable line of the store (a kill -9 may leave one torn line at a file's end)."""
    docs = []
    for path in sorted(store.glob(f"{kind}-*.ndjson")):
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                docs.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                docs.append({"_torn": True})
    return docs


def duplicated_ids(docs: list[dict[str, Any]]) -> int:
    counts = Counter(d["_id"] for d in docs if "_id" in d)
    return sum(n - 1 for n in counts.values() if n > 1)
