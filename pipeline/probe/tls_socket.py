"""A TLS client connection as a non-blocking ``SSLSocket`` driven by the event loop's
reader/writer callbacks: the cheapest correct way found to run many handshakes from the loop.

Why this path (``bench/bench_tls.py`` measures the candidates side by side, alternating, same
run; figures in docs/BENCHMARKS.md): asyncio's own TLS streams (``open_connection(ssl=…)`` or
``start_tls``) feed OpenSSL through memory BIOs and run every record through the transport,
protocol and stream-reader machinery; that machinery, not OpenSSL, is most of the difference to
``openssl s_time``. Here OpenSSL reads and writes the socket itself and the loop only wakes the
coroutine when the socket is readable or writable (``SSLWantReadError`` / ``SSLWantWriteError``),
one future per wait. A bounded pool of blocking handshakes in worker threads measured level with
it one at a time and behind it with 8 in flight (the GIL hand-offs and the executor's futures cost
what the loop saved), and it brings what this path does not have: a thread blocked in ``connect``
or ``do_handshake`` cannot be cancelled, so a shutdown would have to wait for it or abandon it.
Memory BIOs moved to the socket by hand (no asyncio transport) measured level one at a time and
about 3 % cheaper with 8 in flight (2026-12-03): too little to take on moving every record
between BIO and socket here, with its own EOF and close cases.

Cancellation is the coroutine's: every wait is an ``await`` on a loop future, so a cancelled
check (a timeout, a shutdown abandoning the cycle) unwinds at once; a wait always takes the fd
off the selector when it ends (however it ends), and ``abort`` does too if one is still there,
before closing the socket. The TCP connect is the same one-wait pattern (``connect_ex``, then
writable, then ``SO_ERROR``) rather than ``loop.sock_connect``, whose address and transport
checks and done-callbacks this caller does not need: it connects to IP literals only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl

READ_CHUNK = 16384  # one TLS record's plaintext at most
LINE_LIMIT = 65536  # a status or header line longer than this is refused (StreamReader's)


class TlsSocket:
    """One TCP connection, then TLS on it. Not safe for concurrent use by two coroutines."""

    __slots__ = ("_buf", "_closed", "_loop", "_waiting", "sock", "tls")

    def __init__(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self.sock = sock
        self.tls: ssl.SSLSocket | None = None
        self._buf = bytearray()
        self._waiting = False  # the fd is on the selector (inside ``_wait``)
        self._closed = False

    @classmethod
    async def connect(cls, address: str, port: int,
                      local: tuple[str, int] | None = None) -> TlsSocket:
        """A TCP connection to ``address`` (an IP literal), from ``local`` if given (the
        probe's ``source_address``); the caller bounds it in time."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if local is not None:
                sock.bind(local)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = cls(sock)
            err = sock.connect_ex((address, port))
            if err in (errno.EINPROGRESS, errno.EAGAIN, errno.EINTR):  # as sock_connect: going on
                await conn._wait(True)
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:  # OSError(errno, …) is the matching subclass (ConnectionRefusedError, …)
                raise OSError(err, f"{os.strerror(err)}: {address} port {port}")
        except BaseException:
            sock.close()
            raise
        return conn

    async def _wait(self, write: bool) -> None:
        loop, fd = self._loop, self.sock.fileno()
        fut = loop.create_future()
        if write:
            loop.add_writer(fd, _wake, fut)
        else:
            loop.add_reader(fd, _wake, fut)
        self._waiting = True
        try:
            await fut
        finally:
            self._waiting = False
            if write:
                loop.remove_writer(fd)
            else:
                loop.remove_reader(fd)

    async def handshake(self, ctx: ssl.SSLContext, server_name: str) -> ssl.SSLSocket:
        """TLS over the connection (SNI and, with a verifying context, hostname check)."""
        # wrap_socket detaches the plain socket: from here on the SSLSocket owns the fd.
        # Ragged EOFs raise (SSLEOFError), so that a reset is not read as a clean end.
        self.tls = tls = ctx.wrap_socket(self.sock, server_hostname=server_name,
                                         do_handshake_on_connect=False,
                                         suppress_ragged_eofs=False)
        self.sock = tls
        while True:
            try:
                tls.do_handshake()
                return tls
            except ssl.SSLWantReadError:
                await self._wait(False)
            except ssl.SSLWantWriteError:
                await self._wait(True)

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self._tls().send(view):]
            except ssl.SSLWantReadError:
                await self._wait(False)
            except (ssl.SSLWantWriteError, BlockingIOError):
                await self._wait(True)

    async def _fill(self) -> bool:
        """Read what the peer sent into the buffer; False at the end of the stream."""
        tls = self._tls()
        while True:
            try:
                data = tls.recv(READ_CHUNK)
            except ssl.SSLWantReadError:
                await self._wait(False)
                continue
            except ssl.SSLWantWriteError:
                await self._wait(True)
                continue
            except ssl.SSLZeroReturnError:  # the peer's close_notify
                return False
            except ssl.SSLEOFError:
                # OpenSSL reports a TCP reset here as an unexpected EOF: the two look alike.
                raise ConnectionResetError("the peer closed or reset the connection without "
                                           "a TLS close_notify") from None
            if not data:
                return False
            self._buf += data
            return True

    async def readline(self, what: str) -> bytes:
        """One line up to ``\\n``; ValueError naming ``what`` if the stream ends or the line
        outgrows ``LINE_LIMIT`` first (the messages of the asyncio reader this replaces)."""
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end + 1])
                del self._buf[:end + 1]
                return line
            if len(self._buf) > LINE_LIMIT:
                raise ValueError(f"{what} longer than the stream limit (64 KiB)")
            if not await self._fill():
                raise ValueError(f"connection closed in the {what}: "
                                 f"{bytes(self._buf[:60])!r}")

    async def close(self) -> None:
        """Graceful close from our side: our close_notify goes out, the peer's is not awaited.

        TLS lets the closing side close once its close_notify is sent (RFC 8446, 6.1); Go's
        ``tls.Conn.Close`` (blackbox_exporter's) does exactly that. Waiting for the peer's as
        well told nothing about the check (decided before the close) and cost one more loop
        wake-up and reading its session tickets: ≈ 10 % of a TLS check's CPU (bench_tls.py
        ``--reference``, docs/BENCHMARKS.md). ``unwrap`` raising ``SSLWantReadError`` means
        the alert is written and the peer's has not come; a full socket buffer
        (``SSLWantWriteError``) is waited out (the caller bounds the wait)."""
        tls = self._tls()
        try:
            while True:
                try:
                    tls.unwrap()
                    break
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLWantWriteError:
                    await self._wait(True)
        finally:
            self.abort()

    def abort(self) -> None:
        """Close the socket now (no close_notify); idempotent, and cheap when repeated (a check
        aborts every connection it opened once more at its end)."""
        if self._closed:
            return
        self._closed = True
        if self._waiting:  # only if a wait could not take the fd off the selector itself
            with contextlib.suppress(OSError, ValueError):
                self._loop.remove_reader(self.sock.fileno())
                self._loop.remove_writer(self.sock.fileno())
        with contextlib.suppress(OSError):
            self.sock.close()

    def _tls(self) -> ssl.SSLSocket:
        if self.tls is None:
            raise RuntimeError("no TLS on this connection yet")
        return self.tls


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
