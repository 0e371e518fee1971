"""A TLS check driven from the loop's reader/writer callbacks, with one future for the whole
connect + handshake: the candidate that takes a check's two loop waits off the coroutine.

``TlsSocket`` (the probe's) awaited a future per wait until 2026-12-06: the connect's
"writable", then the server's flight. Each wait resumes the check's task one loop iteration
after the fd's callback (the future schedules the task's wake-up), so a check paid two future
hops. Here the callbacks do the work themselves (``SO_ERROR``, the ClientHello, the server's
flight, our Finished) and the task is woken once, when the handshake is over; measured ≈ 7 %
less CPU with 8 in flight, the probe's ``TlsSocket.open`` now works the same way
(``tls_socket._Opening``). This one stays as the bare candidate: no per-phase timing or bounds
of its own (the caller bounds the whole of it), so ``bench_tls.py`` can set it beside the
probe's connection and tell the cost of the probe's bookkeeping
(``bench_tls.py``, ``bench_tls_count.py --sides tls_socket,callbacks``; docs/BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl

RECV_CHUNK = 65536


async def callback_check(host: str, port: int, ctx: ssl.SSLContext, sni: str) -> bool:
    """Connect, verifying handshake, the peer's DER, our close_notify; True if all went."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    fd = sock.fileno()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    done: asyncio.Future[ssl.SSLObject] = loop.create_future()
    tls: ssl.SSLObject | None = None

    def finish(exc: BaseException | None) -> None:
        loop.remove_reader(fd)
        if not done.done():
            if exc is None:
                assert tls is not None
                done.set_result(tls)
            else:
                done.set_exception(exc)

    def readable() -> None:
        assert tls is not None
        try:
            data = sock.recv(RECV_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            finish(exc)
            return
        if data:
            incoming.write(data)
        else:
            incoming.write_eof()
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            if outgoing.pending:
                sock.send(outgoing.read())  # a flight fits an empty socket buffer
            return
        except (ssl.SSLError, OSError) as exc:
            finish(exc)
            return
        if outgoing.pending:
            sock.send(outgoing.read())  # our Finished
        finish(None)

    def writable() -> None:
        nonlocal tls
        loop.remove_writer(fd)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            done.set_exception(OSError(err, os.strerror(err)))
            return
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()  # writes the ClientHello
        sock.send(outgoing.read())
        loop.add_reader(fd, readable)

    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
            raise OSError(err, os.strerror(err))
        loop.add_writer(fd, writable)
        try:
            shaken = await done
        finally:  # however the wait ends, the fd leaves the selector
            loop.remove_writer(fd)
            loop.remove_reader(fd)
        ok = bool(shaken.getpeercert(True))
        with contextlib.suppress(ssl.SSLWantReadError):
            shaken.unwrap()  # our close_notify into the BIO; the peer's is not awaited
        if outgoing.pending:
            sock.send(outgoing.read())
        return ok
    finally:
        sock.close()
