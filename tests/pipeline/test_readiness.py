"""The probe's readiness set (``probe.readiness``): the epoll set of ours the loop watches, and
the fallback on the loop's own ``add_reader``, held to the same behaviour on real sockets."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
from collections.abc import Iterator

import pytest

from pipeline.probe import readiness
from pipeline.probe.readiness import EpollReadiness, LoopReadiness

KINDS = [EpollReadiness, LoopReadiness]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_watched_socket_calls_back_while_ready_and_not_after_unwatch(kind, pair) -> None:
    a, b = pair
    ready = kind(asyncio.get_running_loop())
    calls: list[str] = []
    ready.watch(a.fileno(), False, lambda: calls.append("read"))
    await _turns()
    assert calls == []  # nothing to read yet
    b.send(b"x")
    await _turns()
    assert "read" in calls
    a.recv(1)
    calls.clear()
    ready.watch(a.fileno(), True, lambda: calls.append("write"))  # the interest, changed
    await _turns()
    assert calls and set(calls) == {"write"}
    ready.unwatch(a.fileno())
    ready.unwatch(a.fileno())  # idempotent
    calls.clear()
    b.send(b"y")
    await _turns()
    assert calls == []


async def test_a_raising_callback_is_reported_and_the_batchs_others_still_run(pair) -> None:
    a, b = pair
    c, d = socket.socketpair()
    loop = asyncio.get_running_loop()
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx["exception"]))
    try:
        ready = EpollReadiness(loop)
        served: list[str] = []

        def boom() -> None:
            raise RuntimeError("boom")
        ready.watch(a.fileno(), False, boom)
        ready.watch(c.fileno(), False, lambda: served.append("c"))
        b.send(b"x")
        d.send(b"x")
        await _turns()
        assert served and reported and isinstance(reported[0], RuntimeError)
    finally:
        loop.set_exception_handler(None)
        c.close()
        d.close()


async def test_a_socket_closed_while_watched_leaves_its_fd_number_reusable() -> None:
    """Closed without ``unwatch``, the kernel drops it from the epoll set; a new socket given
    the same fd number can be watched (``modify`` of the stale entry fails, then registers)."""
    ready = EpollReadiness(asyncio.get_running_loop())
    a, b = socket.socketpair()
    fd = a.fileno()
    ready.watch(fd, False, lambda: None)
    a.close()
    c, d = socket.socketpair()
    try:
        assert fd in (c.fileno(), d.fileno())  # the lowest free number, reused
        mine = c if c.fileno() == fd else d
        other = d if mine is c else c
        calls: list[int] = []
        ready.watch(fd, False, lambda: calls.append(1))
        other.send(b"x")
        await _turns()
        assert calls
        ready.unwatch(fd)
    finally:
        b.close()
        c.close()
        d.close()


def test_one_set_per_loop_closed_with_the_loop() -> None:
    """``for_loop`` gives a loop one set, made on first use; when the loop is gone, its set
    and the set's epoll fd are gone too (the table holds loops weakly, a set its loop weakly)."""
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    gc.collect()
    before = open_fds()
    loop = asyncio.new_event_loop()
    try:
        first = readiness.for_loop(loop)
        assert readiness.for_loop(loop) is first
        other = asyncio.new_event_loop()
        try:
            assert readiness.for_loop(other) is not first
        finally:
            other.close()
    finally:
        loop.close()
    del loop, other, first
    gc.collect()
    assert open_fds() == before


async def test_recv_reads_when_readable_raises_a_refusal_and_unwatches_when_cancelled() -> None:
    """``readiness.recv`` on real loopback UDP: the datagram sent; a connected socket to a
    closed port gets the ICMP refusal as ``ConnectionRefusedError``; a cancelled wait leaves
    its fd unwatched (a later watch of the same fd registers afresh)."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        server.bind(("127.0.0.1", 0))
        client.setblocking(False)
        client.connect(server.getsockname())
        waiting = asyncio.ensure_future(readiness.recv(client, 512))
        await _turns(2)
        assert not waiting.done()
        server.sendto(b"answer", client.getsockname())
        assert await asyncio.wait_for(waiting, 2.0) == b"answer"

        waiting = asyncio.ensure_future(readiness.recv(client, 512))
        await _turns(2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert client.fileno() not in readiness.for_loop(loop)._callbacks

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.setblocking(False)
        client.connect(("127.0.0.1", port))  # nobody there now: ICMP port unreachable
        client.send(b"question")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(readiness.recv(client, 512), 2.0)
