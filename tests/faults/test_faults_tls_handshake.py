"""Hostile TLS peers: every one gives a classified ConnectResult, within the check's deadline.

The peers (tests/faults/faults_tls_peers.py) are threaded servers on 127.0.0.1 with a CA of our
own; timing assertions are generous bounds that prove a deadline is enforced, nothing tighter.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from faults_tls_peers import (
    EDGE_NAME,
    Peer,
    _ok_leaf,
    server_context,
    shared_pki,
    silent,
    start_edge,
    tls,
)

import pipeline.probe.connect as connect
from pipeline import eventloop
from pipeline.probe.connect import ConnectResult, ConnectSpec, probe_connect, tls_contexts

T = TypeVar("T")


def contexts():
    return tls_contexts(shared_pki().ca_file)


async def probe(peer: Peer, name: str = EDGE_NAME, *, connect_timeout: float = 1.0,
                tls_timeout: float = 1.0, http_path: str | None = None,
                http_timeout: float = 1.0) -> tuple[ConnectResult, float]:
    started = time.monotonic()
    result = await probe_connect(peer.host, peer.port, name,
                                 ConnectSpec(contexts(), connect_timeout, tls_timeout, http_path,
                                             http_timeout))
    return result, time.monotonic() - started


async def test_a_healthy_edge_is_verified_and_described() -> None:
    with start_edge("ok") as edge:
        r, _ = await probe(edge, http_path="/")
    assert r.ok and r.tls_verified and r.http_status == 200, r
    assert r.certificate is not None and r.certificate.alt_names == (EDGE_NAME,)
    assert r.certificate.parse_error is None and len(r.certificate.sha256) == 64


@pytest.mark.parametrize(("kind", "error_type", "words"), [
    ("close_after_client_hello", "tls.handshake", "closed the connection"),
    ("garbage_server_hello", "tls.handshake", "WRONG_VERSION_NUMBER"),
    ("reset_during_handshake", "tls.handshake", "reset"),
    ("tls10_only", "tls.handshake", "PROTOCOL_VERSION"),
])
async def test_a_broken_handshake_is_tls_handshake(kind: str, error_type: str, words: str
                                                   ) -> None:
    with start_edge(kind) as edge:
        r, elapsed = await probe(edge)
    assert r.error_type == error_type and words.lower() in (r.error_message or "").lower(), r
    assert r.tcp_established and not r.tls_established and elapsed < 1.0


@pytest.mark.parametrize(("kind", "name", "words"), [
    ("expired", EDGE_NAME, "expired"),
    ("ok", "wrong.faults.test", "mismatch"),
    ("self_signed", EDGE_NAME, "self-signed"),
])
async def test_a_certificate_that_does_not_verify_is_tls_verify_and_recorded(
        kind: str, name: str, words: str) -> None:
    with start_edge(kind) as edge:
        r, _ = await probe(edge, name)
    assert r.error_type == "tls.verify" and words in (r.error_message or ""), r
    assert r.tls_established and not r.tls_verified and r.tls_version
    assert r.certificate is not None and r.certificate.subject_cn == EDGE_NAME


async def test_a_peer_that_never_speaks_is_tls_timeout_within_the_tls_timeout() -> None:
    """asyncio raises ConnectionAbortedError when its handshake timeout fires; the probe's own
    deadline makes it a timeout, and the failed handshake is aborted, not closed with a wait."""
    tls_timeout = 1.0
    with start_edge("silent") as edge:
        r, elapsed = await probe(edge, tls_timeout=tls_timeout)
    assert r.error_type == "tls.timeout", r
    assert r.tcp_established and not r.tls_established
    # ~1.0 s; the old close waited another 0.5 s after the failed start_tls
    assert tls_timeout * 0.9 <= elapsed < tls_timeout + 0.35, elapsed


async def test_a_handshake_dripped_byte_by_byte_is_tls_timeout_within_the_tls_timeout(
        ) -> None:
    with start_edge("drip_handshake") as edge:
        r, elapsed = await probe(edge, tls_timeout=1.0)
    assert r.error_type == "tls.timeout", r
    assert elapsed < 1.0 + 0.35, elapsed


async def test_many_hanging_handshakes_cost_one_tls_timeout_together() -> None:
    """An answer of many addresses that all hang the handshake: no check holds on past it."""
    with start_edge("silent") as edge:
        started = time.monotonic()
        results = await asyncio.gather(*(probe(edge, tls_timeout=1.0) for _ in range(40)))
        elapsed = time.monotonic() - started
    assert {r.error_type for r, _ in results} == {"tls.timeout"}
    assert elapsed < 1.0 + 1.0, elapsed


# The check's one timer, on asyncio's loop and on uvloop's: ``[runtime] event_loop = auto`` runs
# the probe on uvloop when it is installed, so the re-arming (to an earlier and to a later end)
# and the telling apart of a caller's cancellation must hold on both.
LOOPS = pytest.mark.parametrize("loop", ["asyncio", "uvloop"])


def on_loop(loop: str, main: Coroutine[Any, Any, T]) -> T:
    assert eventloop.loop_name(loop) == loop, "uvloop is a test dependency"
    return eventloop.run(main, loop)


@LOOPS
@pytest.mark.parametrize(("connect_timeout", "tls_timeout", "at_least"), [
    # The timer is armed for the connect's end (5 s): the handshake's earlier end (0.5 s) must
    # move it forward, not wait for it.
    pytest.param(5.0, 0.5, 0.45, id="tls-shorter-than-connect"),
    # The timer set for the connect's end (0.2 s) fires during the handshake: it must re-arm
    # for the handshake's own end (1 s), not time the handshake out early.
    pytest.param(0.2, 1.0, 0.95, id="tls-longer-than-connect"),
])
def test_the_tls_timeout_bounds_the_handshake_whatever_the_connect_timeout(
        loop: str, connect_timeout: float, tls_timeout: float, at_least: float) -> None:
    """Exactly the TLS timeout: neither cut short by the connect's nor stretched to it."""
    with start_edge("silent") as edge:
        r, elapsed = on_loop(loop, probe(edge, connect_timeout=connect_timeout,
                                         tls_timeout=tls_timeout))
    assert r.error_type == "tls.timeout", r
    assert at_least <= elapsed < tls_timeout + 0.35, elapsed


@LOOPS
def test_a_callers_shorter_timeout_reaches_the_caller_not_the_result(loop: str) -> None:
    """Cancellation that is not the check's own (here the caller's 0.3 s scope around a 2 s
    handshake) propagates: the check must not swallow it into a ``tls.timeout`` result."""
    async def main(edge: Peer) -> None:
        async with asyncio.timeout(0.3):
            await probe(edge, tls_timeout=2.0)

    with start_edge("silent") as edge:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            on_loop(loop, main(edge))
        elapsed = time.monotonic() - started
    assert elapsed < 0.3 + 0.35, elapsed


@LOOPS
def test_the_checks_own_timeout_inside_a_callers_longer_scope_is_a_result(loop: str) -> None:
    """The reverse: the check's timer fires inside the caller's 5 s scope; the caller gets the
    classified result and its own scope stays untouched (no stray cancellation later)."""
    async def main(edge: Peer) -> tuple[ConnectResult, int]:
        async with asyncio.timeout(5.0):
            r, _ = await probe(edge, tls_timeout=0.5)
            await asyncio.sleep(0.05)  # a stray cancellation would surface at this await
        task = asyncio.current_task()
        assert task is not None
        return r, task.cancelling()

    with start_edge("silent") as edge:
        r, cancelling = on_loop(loop, main(edge))
    assert r.error_type == "tls.timeout", r
    assert cancelling == 0


def _slow_then_silent(pki) -> object:
    """First connection: a handshake delayed by 1.5 s presenting a self-signed certificate
    (fails verification); every later connection: accepted and never answered."""
    ctx = server_context(pki.leaf(self_signed=True))
    count = {"n": 0}
    lock = threading.Lock()
    first = tls(ctx)

    def handler(conn: socket.socket, peer: Peer) -> None:
        with lock:
            count["n"] += 1
            n = count["n"]
        if n == 1:
            if peer.stopping.wait(1.5):
                return
            first(conn, peer)
        else:
            silent(conn, peer)
    return handler


async def test_the_second_handshake_shares_what_is_left_of_the_deadline() -> None:
    connect_timeout, tls_timeout = 0.5, 2.0
    budget = connect_timeout + tls_timeout
    with start_edge(_slow_then_silent(shared_pki())) as edge:
        r, elapsed = await probe(edge, connect_timeout=connect_timeout, tls_timeout=tls_timeout)
    assert r.error_type == "tls.verify" and "certificate not recorded" in r.error_message, r
    assert r.tls_established and not r.tls_verified and r.certificate is None
    # 1.5 s first handshake + what was left (1.0 s); a fresh tls timeout would make it 3.5 s
    assert elapsed < budget + 0.5, elapsed


async def test_an_unforeseen_exception_is_classified_with_its_type(monkeypatch) -> None:
    def boom(writer):
        raise RuntimeError("boom")
    monkeypatch.setattr(connect, "_tls_facts", boom)
    with start_edge("ok") as edge:
        r, _ = await probe(edge)
    assert r.error_type == "tls.error" and r.error_message == "RuntimeError: boom", r
    assert r.tcp_established and r.tcp_connect_us is not None


async def test_an_exception_in_the_loops_handshake_callback_ends_the_check_at_once(
        monkeypatch) -> None:
    """The handshake runs in the loop's reader callback (``tls_socket._Opening``): an exception
    there must end the check's wait with its type, not be logged by the loop while the check
    waits out its TLS timeout (30 s here)."""
    import pipeline.probe.tls_socket as tls_socket

    monkeypatch.setattr(tls_socket, "RECV_CHUNK", -1)  # recv(-1): ValueError in the callback
    with start_edge("ok") as edge:
        r, elapsed = await probe(edge, tls_timeout=30.0)
    assert r.error_type == "tls.error" and (r.error_message or "").startswith("ValueError"), r
    assert r.tcp_established and r.tcp_connect_us is not None, r
    assert elapsed < 5.0, elapsed


async def test_a_refused_connect_raises_the_matching_error_naming_the_peer() -> None:
    """Below the check: ``TlsSocket.open`` to a closed loopback port raises
    ``ConnectionRefusedError`` naming address and port, and never reports TCP as up."""
    from pipeline.probe.tls_socket import TlsSocket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: a RST to a SYN
        conn = TlsSocket.new("127.0.0.1")
        calls: list[str] = []
        try:
            with pytest.raises(ConnectionRefusedError, match=f"127.0.0.1 port {port}"):
                await conn.open("127.0.0.1", port, contexts()[0], EDGE_NAME,
                                lambda: calls.append("up"))
        finally:
            conn.abort()
    assert calls == [] and conn.tls is None


async def test_an_address_that_is_not_a_string_is_classified_not_raised() -> None:
    """A record of another class (CH) gives an integer address: still one classified result."""
    r = await probe_connect(2130706433, 1, EDGE_NAME,  # type: ignore[arg-type]
                            ConnectSpec(contexts(), 0.5, 0.5))
    assert r.error_type == "tcp.error" and "TypeError" in (r.error_message or ""), r


async def test_a_peer_that_ignores_close_notify_costs_at_most_the_close_grace() -> None:
    with start_edge("tls_then_silent") as edge:
        r, elapsed = await probe(edge)
    assert r.ok and r.tls_verified, r
    assert elapsed < connect.CLOSE_GRACE + 0.5, elapsed


def close_notify_watcher(seen: list[str]):
    """An edge that records whether the client's close_notify came (a ragged EOF raises, as
    ``suppress_ragged_eofs=False`` makes it) and never sends its own."""
    ctx = server_context(_ok_leaf(shared_pki()))

    def handler(conn: socket.socket, peer: Peer) -> None:
        conn.settimeout(10)
        tls_conn = ctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
        with peer._lock:
            peer._conns.append(tls_conn)
        try:
            data = tls_conn.recv(1)
            seen.append("close_notify" if data == b"" else f"data {data!r}")
        except ssl.SSLEOFError:
            seen.append("no close_notify")
        except OSError as exc:
            seen.append(type(exc).__name__)
        peer.hold()
    return handler


async def test_the_close_sends_close_notify_and_does_not_wait_for_the_peers(
        monkeypatch) -> None:
    """One-way close, as Go's ``tls.Conn.Close``: the edge gets our close_notify and the
    check does not wait for the edge's (here never sent; with a 30 s grace and 20 s phase
    timeouts, waiting would outlast the 10 s bound)."""
    monkeypatch.setattr(connect, "CLOSE_GRACE", 30.0)
    seen: list[str] = []
    with start_edge(close_notify_watcher(seen)) as edge:
        r, _ = await asyncio.wait_for(probe(edge, connect_timeout=20, tls_timeout=20), 10)
        for _ in range(200):  # the edge's thread records what arrived
            if seen:
                break
            await asyncio.sleep(0.05)
    assert r.ok and r.tls_verified, r
    assert seen == ["close_notify"]


async def test_a_close_that_outlasts_the_deadline_does_not_fail_a_complete_check(
        monkeypatch) -> None:
    """A close that must wait (our close_notify did not fit the socket's buffer) and never
    ends: the close phase's bound ends it, and the measurement stands as it was."""
    from pipeline.probe.tls_socket import TlsSocket

    async def stuck_close(self) -> None:
        await asyncio.sleep(60)
    monkeypatch.setattr(TlsSocket, "close_at_once", lambda self: False)
    monkeypatch.setattr(TlsSocket, "close", stuck_close)
    with start_edge("ok") as edge:  # phase timeouts far above the close's grace
        r, elapsed = await probe(edge, connect_timeout=5.0, tls_timeout=5.0)
    assert r.ok and r.tls_verified and r.certificate is not None, r
    assert elapsed < connect.CLOSE_GRACE + 1.0, elapsed


async def test_a_close_notify_the_full_socket_buffer_cannot_take_waits_and_still_closes() -> None:
    """Below the check: an edge that reads nothing after the handshake, and both buffers
    filled (raw bytes, until the socket takes not one more three times running; the edge's
    kernel reopens its window in bursts for a while); then our close_notify cannot go at once.
    ``close_at_once`` says so (False) and keeps the socket open; ``close`` sends the rest,
    waiting for room, and closes the socket however the wait ends (here the caller's bound)."""
    import contextlib

    from pipeline.probe.tls_socket import TlsSocket

    with start_edge("tls_then_silent") as edge:
        conn = TlsSocket.new("127.0.0.1")
        try:
            await conn.open("127.0.0.1", edge.port, contexts()[0], EDGE_NAME, lambda: None)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # no autotuning
            full = 0
            for _ in range(60):
                taken = 0
                for size in (65536, 4096, 256, 16, 1):
                    with contextlib.suppress(BlockingIOError):
                        while True:
                            taken += conn.sock.send(b"\0" * size)
                full = full + 1 if taken == 0 else 0
                if full == 3:
                    break
                await asyncio.sleep(0.05)
            assert full == 3, "the edge's kernel kept taking bytes"
            assert conn.close_at_once() is False
            assert conn.sock.fileno() != -1  # still open: the rest of the alert is to send
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.close(), 0.3)
            assert conn.sock.fileno() == -1
        finally:
            conn.abort()
