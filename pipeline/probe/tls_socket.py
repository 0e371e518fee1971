"""A TLS client connection: OpenSSL on memory BIOs (``ssl.SSLObject``), its bytes moved to a
non-blocking socket by hand, the event loop's reader/writer callbacks driving the handshake: the
cheapest correct way found to run many handshakes from the loop.

Why this path (``bench/bench_tls.py`` measures the candidates side by side, alternating, same
run; figures in docs/BENCHMARKS.md):

* asyncio's own TLS streams (``open_connection(ssl=…)`` or ``start_tls``) also use memory BIOs
  but run every record through the transport, protocol and stream-reader machinery; that
  machinery, not OpenSSL, was most of the difference to ``openssl s_time``.
* A non-blocking ``SSLSocket`` (OpenSSL reading the socket itself; this module until
  2026-12-06) costs about the same Python, but more system calls: OpenSSL's socket BIO reads a
  record header, then its body (≈ 18 ``read`` calls a check against 1 ``recv`` here), and
  ``SSLSocket`` adds ``getsockopt``/``getpeername``/``ioctl`` calls of its own. Above all, its
  graceful close reads: ``unwrap`` calls ``SSL_shutdown`` a second time to look for the peer's
  close_notify, and OpenSSL then reads and processes the TLS 1.3 session tickets the server
  sent after the handshake (a session copied per ticket: ≈ 3.5 % of a check's instructions,
  callgrind, docs/BENCHMARKS.md). Here OpenSSL sees only the bytes handed to it: a check that
  reads nothing after the handshake never feeds it the tickets, and the close writes our
  close_notify without reading anything, as Go's ``tls.Conn.Close`` does.
* A bounded pool of blocking handshakes in worker threads measured level one at a time and
  behind with 8 in flight, and a thread blocked in ``connect`` or ``do_handshake`` cannot be
  cancelled, so a shutdown would have to wait for it or abandon it.

The connect and the handshake (``open``) run in readiness callbacks (``_Opening``) and wake
the check's coroutine once, when both are over; what follows (an HTTP request, a close that
must wait for room) awaits a loop future per wait (the readiness set's ``wait``). The socket's
readiness is watched in the probe's own epoll set (``probe.readiness``, which says why), not
with the loop's ``add_reader``/``add_writer``. Cancellation is the coroutine's either way: a
cancelled check (a timeout, a shutdown abandoning the cycle) unwinds at once from the one
``await`` it is in; that ``await`` always stops the watch when it ends (however it ends), and
``abort`` does too before closing the socket. The TCP connect is ``connect_ex``, then
writable, then ``SO_ERROR``, rather than ``loop.sock_connect``, whose address and transport
checks and done-callbacks this caller does not need: it connects to IP literals only.

The end of the stream: a ``recv`` of nothing is handed to OpenSSL as the BIO's EOF, so a read
after it raises ``SSLZeroReturnError`` when the peer had sent its close_notify and
``SSLEOFError`` when it had not (a reset or a ragged close: never read as a clean end).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
from collections.abc import Callable

from pipeline.probe import readiness

READ_CHUNK = 16384  # one TLS record's plaintext at most
RECV_CHUNK = 65536  # bytes taken off the socket at once: a handshake flight fits
LINE_LIMIT = 65536  # a status or header line longer than this is refused (StreamReader's)
SNI_CACHE = 1024  # server names remembered in their IDNA form (``_idna``)
_SNI: dict[str, bytes] = {}


class TlsSocket:
    """One TCP connection, then TLS on it. Not safe for concurrent use by two coroutines."""

    __slots__ = ("_buf", "_closed", "_incoming", "_loop", "_outgoing", "_ready", "_unsent",
                 "sock", "tls")

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ready = readiness.for_loop(loop)
        self.sock = sock
        self.tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._buf = bytearray()
        self._unsent: bytes | None = None  # the part of our close_notify still to send
        self._closed = False

    @classmethod
    def new(cls, address: str, local: tuple[str, int] | None = None) -> TlsSocket:
        """A socket for a TCP connection to ``address`` (an IP literal), bound to ``local`` if
        given (the probe's ``source_address``); ``open`` connects it."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        # SOCK_NONBLOCK: non-blocking from the start (Python then sets its timeout to 0).
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:
            if local is not None:
                sock.bind(local)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            sock.close()
            raise
        return cls(sock, asyncio.get_running_loop())

    async def open(self, address: str, port: int, ctx: ssl.SSLContext, server_name: str,
                   connected: Callable[[], object]) -> ssl.SSLObject:
        """TCP, then TLS (SNI and, with a verifying context, hostname check): the handshake as
        readiness callbacks drive it (``_Opening``), and one future for the whole.

        ``connected`` is called the moment TCP is up, before the ClientHello (the caller's
        phase change: its connect time, its handshake bound); whether the connect was made is
        ``self.tls is not None`` then. A connect failure is the matching ``OSError``
        (``ConnectionRefusedError``, …), a handshake failure what OpenSSL or the socket raised;
        the caller bounds the whole in time, and cancelling the wait takes the fd off the
        readiness set at once."""
        opening = _Opening(self, ctx, server_name, connected, (address, port))
        try:
            err = self.sock.connect_ex(opening.peer)
            if err in (errno.EINPROGRESS, errno.EAGAIN, errno.EINTR):  # as sock_connect
                opening.watch(write=True)
            elif err:  # OSError(errno, …) is the matching subclass (ConnectionRefusedError, …)
                raise opening.connect_error(err)
            else:
                opening.tcp_up()
            return await opening.done
        finally:
            opening.unwatch()

    async def _send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view):]
            except BlockingIOError:  # a full socket buffer: the caller bounds the wait
                await self._ready.wait(self.sock.fileno(), True)

    async def _flush(self) -> None:
        """Send what OpenSSL has written to the outgoing BIO."""
        if self._outgoing.pending:
            await self._send_all(self._outgoing.read())

    async def _feed(self) -> None:
        """Wait for the peer's bytes and hand them to OpenSSL (nothing read: the BIO's EOF)."""
        data = await readiness.recv(self.sock, RECV_CHUNK)
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    async def send(self, data: bytes) -> None:
        tls = self._tls()
        view = memoryview(data)
        while view:
            try:
                view = view[tls.write(view):]
            except ssl.SSLWantReadError:
                await self._flush()
                await self._feed()
        await self._flush()

    async def _fill(self) -> bool:
        """Read what the peer sent into the buffer; False at the end of the stream."""
        tls = self._tls()
        while True:
            try:
                data = tls.read(READ_CHUNK)
            except ssl.SSLWantReadError:
                await self._flush()  # a key update's answer, should OpenSSL have written one
                await self._feed()
                continue
            except ssl.SSLZeroReturnError:  # the peer's close_notify
                return False
            except ssl.SSLEOFError:
                # The stream ended without close_notify: a reset and a ragged close look alike.
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

    def close_at_once(self) -> bool:
        """Graceful close from our side, if it needs no wait: our close_notify goes out, the
        peer's is not awaited; True when it went whole (the socket is closed then). False when
        the socket's buffer did not take all of it: ``close`` sends the rest, waiting.

        TLS lets the closing side close once its close_notify is sent (RFC 8446, 6.1); Go's
        ``tls.Conn.Close`` (blackbox_exporter's) does exactly that. Waiting for the peer's as
        well told nothing about the check (decided before the close) and cost one more loop
        wake-up and reading its session tickets: ≈ 10 % of a TLS check's CPU (bench_tls.py
        ``--reference``, docs/BENCHMARKS.md). ``unwrap`` raising ``SSLWantReadError`` means
        the alert is written to the BIO and the peer's has not been fed. An error (the peer
        reset the connection) aborts the socket and is raised."""
        tls = self._tls()
        try:
            with contextlib.suppress(ssl.SSLWantReadError):
                tls.unwrap()
            alert = self._outgoing.read()
            try:
                sent = self.sock.send(alert) if alert else 0
            except BlockingIOError:  # nothing taken: all of it is for ``close``
                sent = 0
        except BaseException:
            self.abort()
            raise
        if sent < len(alert):
            self._unsent = alert[sent:]
            return False
        self.abort()
        return True

    async def close(self) -> None:
        """Graceful close (``close_at_once``), waiting out a full socket buffer if need be
        (the caller bounds the wait); the socket is closed at the end, whatever happens."""
        try:
            if self._unsent is None and self.close_at_once():
                return
            await self._send_all(self._unsent or b"")
        finally:
            self.abort()

    def abort(self) -> None:
        """Close the socket now (no close_notify); idempotent, and cheap when repeated (a check
        aborts every connection it opened once more at its end)."""
        if self._closed:
            return
        self._closed = True
        # Off the readiness set before the fd number can be reused (a no-op when a wait has
        # taken it off already, as every wait does when it ends).
        self._ready.unwatch(self.sock.fileno())
        with contextlib.suppress(OSError):
            self.sock.close()

    def _tls(self) -> ssl.SSLObject:
        if self.tls is None:
            raise RuntimeError("no TLS on this connection yet")
        return self.tls


class _Opening:
    """The connect and the handshake of one ``TlsSocket.open``, run from reader/writer
    callbacks: the connect's "writable" starts the handshake at once, each flight of the server
    is fed to OpenSSL in the reader callback, and ``done`` is set once the handshake is over.

    Why callbacks and not an ``await`` per wait (the readiness set's ``wait``, which the rest
    of the connection uses): a wait resumes the check's task one loop iteration after its
    callback, through the future; a check waits twice before its handshake is done. Run
    here, the same check wakes its task once: the whole check measured 7.6 % less CPU with 8
    in flight and sequentially (``bench_tls.py --reference`` with the awaiting version,
    docs/BENCHMARKS.md). Every
    callback body ends in ``done`` on any exception (a peer must not leave the check waiting
    for its timer).

    Our flights (the ClientHello, then our Finished) go out with one ``send`` each: they are a
    few hundred bytes, and a new connection's send buffer (≈ 4.5 KiB at Linux's smallest) holds
    both; a flight it did not take whole fails the handshake with an ``OSError`` saying so
    rather than waiting for room (a path that could not be made to happen to test it)."""

    __slots__ = ("conn", "connected", "ctx", "done", "fd", "peer", "reading", "ready",
                 "server_name", "watched")

    def __init__(self, conn: TlsSocket, ctx: ssl.SSLContext, server_name: str,
                 connected: Callable[[], object], peer: tuple[str, int]) -> None:
        self.conn, self.ctx, self.server_name, self.connected = conn, ctx, server_name, connected
        self.peer = peer
        self.ready = conn._ready
        self.fd = conn.sock.fileno()
        self.done: asyncio.Future[ssl.SSLObject] = conn._loop.create_future()
        self.reading = self.watched = False

    def watch(self, write: bool) -> None:
        """Writable (the connect), then readable (the server's flights): one registration in
        the readiness set, its interest changed in place."""
        self.ready.watch(self.fd, write, self._writable if write else self._readable)
        self.reading, self.watched = not write, True

    def unwatch(self) -> None:
        if self.watched:
            self.ready.unwatch(self.fd)
            self.watched = False

    def connect_error(self, err: int) -> OSError:
        """The matching subclass (``ConnectionRefusedError``, …), naming the peer (formatted
        here, on the error, not for every check)."""
        return OSError(err, f"{os.strerror(err)}: {self.peer[0]} port {self.peer[1]}")

    def _end(self, exc: BaseException | None) -> None:
        self.unwatch()
        if not self.done.done():
            if exc is None:
                assert self.conn.tls is not None
                self.done.set_result(self.conn.tls)
            else:
                self.done.set_exception(exc)

    def tcp_up(self) -> None:
        """Connected: the caller's phase change, then the ClientHello."""
        self.connected()
        self.conn.tls = self.ctx.wrap_bio(self.conn._incoming, self.conn._outgoing,
                                          server_hostname=_idna(self.server_name))
        self._advance()

    def _writable(self) -> None:
        """The connect has finished, one way or the other."""
        try:  # still watched for writing: ``_advance`` turns the interest to reading
            err = self.conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise self.connect_error(err)
            self.tcp_up()
        except Exception as exc:  # the connect's error, or anything unforeseen: the caller's
            self._end(exc)

    def _readable(self) -> None:
        try:
            try:
                data = self.conn.sock.recv(RECV_CHUNK)
            except BlockingIOError:  # woken without data (it can happen): wait on
                return
            if data:
                self.conn._incoming.write(data)
            else:  # the BIO's EOF: OpenSSL then raises SSLEOFError (or reads a close_notify)
                self.conn._incoming.write_eof()
            self._advance()
        except Exception as exc:
            self._end(exc)

    def _advance(self) -> None:
        """As far as the bytes at hand take the handshake; our flight out; done when it is."""
        tls = self.conn.tls
        assert tls is not None
        try:
            tls.do_handshake()
            shaken = True
        except ssl.SSLWantReadError:
            shaken = False
        outgoing = self.conn._outgoing
        if outgoing.pending:
            flight = outgoing.read()
            sent = self.conn.sock.send(flight)  # BlockingIOError (nothing taken): the caller's
            if sent != len(flight):
                raise OSError(errno.ENOBUFS, f"the socket took {sent} of the {len(flight)} "
                                             "bytes of a handshake flight")
        if shaken:
            self._end(None)
        elif not self.reading:
            self.watch(write=False)


def _idna(name: str) -> bytes:
    """``name`` as the ssl module sends it (its IDNA form), remembered: given a ``str``, the
    module runs Python's IDNA codec on it for every connection, and a probe connects to few
    names. Bytes are passed to OpenSSL as they are (after an ASCII check): the same SNI and
    the same hostname check. An invalid name raises here as it would in ``wrap_bio``."""
    known = _SNI.get(name)
    if known is None:
        if len(_SNI) >= SNI_CACHE:
            _SNI.clear()
        known = _SNI[name] = name.encode("idna")
    return known
