"""When the probe's own sockets are ready: one epoll set of ours, watched by the event loop.

Why not the loop's ``add_reader``/``add_writer``: a TLS check waits on its socket twice (the
connect, then the server's flight), and on asyncio's loop each wait is an ``add_*`` and a
``remove_*`` in Python: a selector lookup that raises and formats a ``KeyError`` for an fd not
yet registered, two transport checks, a selector key and a handle made and dropped; ≈ 51 k
interpreter instructions a pair, more than a third of the check's Python (callgrind,
docs/BENCHMARKS.md). Here the loop watches one fd, an epoll set of this module's; a socket is
registered in it once, its interest changed in place (``epoll_ctl`` MOD) from "writable" to
"readable", and unregistered at the end: three calls into C a check. When the set is ready the
loop calls ``_dispatch``, which takes the ready sockets (``epoll_wait`` with no timeout) and
calls their callbacks. The interest is level-triggered, as the loop's own: a callback that
leaves data unread is called again on the next loop iteration.

One set per event loop (``for_loop``), made on the first watch and kept for the loop's life; it
is closed when the loop is collected (the epoll object closes its fd then). Where the platform
has no epoll, ``LoopReadiness`` is the same interface on the loop's own ``add_reader``.

A callback must not raise: one that does is reported to the loop's exception handler and the
other ready sockets of that batch are still served.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import weakref
from collections.abc import Callable
from functools import partial

_READ = getattr(select, "EPOLLIN", 0)
_WRITE = getattr(select, "EPOLLOUT", 0)


class _Waits:
    """``wait``, on either kind's ``watch``/``unwatch``."""

    __slots__ = ()

    def watch(self, fd: int, write: bool, callback: Callable[[], object]) -> None:
        raise NotImplementedError

    def unwatch(self, fd: int) -> None:
        raise NotImplementedError

    async def wait(self, fd: int, write: bool) -> None:
        """Until ``fd`` is writable (``write``) or readable: one loop future; the watch ends
        however the wait does (a cancelled wait leaves nothing watched)."""
        fut = asyncio.get_running_loop().create_future()
        self.watch(fd, write, partial(_wake, fut))
        try:
            await fut
        finally:
            self.unwatch(fd)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class EpollReadiness(_Waits):
    """The sockets of one loop, in one epoll set the loop watches for reading."""

    __slots__ = ("__weakref__", "_callbacks", "_epoll", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._epoll = select.epoll()
        self._callbacks: dict[int, Callable[[], object]] = {}
        # A weak reference: the loop holds this object (through the reader), not the reverse,
        # so the loop can be collected, and this set with it.
        self._loop = weakref.ref(loop)
        try:
            loop.add_reader(self._epoll.fileno(), self._dispatch)
        except BaseException:
            self._epoll.close()
            raise

    def watch(self, fd: int, write: bool, callback: Callable[[], object]) -> None:
        """Call ``callback`` (no arguments) whenever ``fd`` is writable (``write``) or readable,
        until ``unwatch``; a second watch of the same fd replaces the first."""
        mask = _WRITE if write else _READ
        if fd in self._callbacks:
            try:
                self._epoll.modify(fd, mask)
            except FileNotFoundError:  # that fd number was closed and reused, never unwatched
                self._epoll.register(fd, mask)
        else:
            self._epoll.register(fd, mask)
        self._callbacks[fd] = callback

    def unwatch(self, fd: int) -> None:
        """Stop watching ``fd``; nothing if it is not watched (idempotent)."""
        if self._callbacks.pop(fd, None) is not None:
            # Closed already (OSError): the kernel has dropped it from the set itself.
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)

    def _dispatch(self) -> None:
        for fd, _events in self._epoll.poll(0):
            callback = self._callbacks.get(fd)  # unwatched by an earlier callback: skipped
            if callback is None:
                continue
            try:
                callback()
            except Exception as exc:  # a callback's bug must not cost the batch's others
                loop = self._loop()
                if loop is not None:
                    loop.call_exception_handler({"message": "readiness callback failed",
                                                 "exception": exc})


class LoopReadiness(_Waits):
    """The same interface on the loop's own ``add_reader``/``add_writer`` (no epoll here)."""

    __slots__ = ("__weakref__", "_loop", "_watched")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # weak, as ``EpollReadiness``'s: see ``for_loop``
        self._watched: dict[int, bool] = {}  # fd -> watched for writing

    def watch(self, fd: int, write: bool, callback: Callable[[], object]) -> None:
        self.unwatch(fd)
        loop = self._live()
        (loop.add_writer if write else loop.add_reader)(fd, callback)
        self._watched[fd] = write

    def unwatch(self, fd: int) -> None:
        write = self._watched.pop(fd, None)
        if write is not None:
            loop = self._live()
            (loop.remove_writer if write else loop.remove_reader)(fd)

    def _live(self) -> asyncio.AbstractEventLoop:
        loop = self._loop()
        if loop is None:
            raise RuntimeError("the event loop of this readiness set is gone")
        return loop


Readiness = EpollReadiness | LoopReadiness
_SETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Readiness] = (
    weakref.WeakKeyDictionary())


def for_loop(loop: asyncio.AbstractEventLoop) -> Readiness:
    """The readiness set of ``loop``, made on first use. (A set holds its loop weakly: a value
    of this weak-keyed table that held its key would keep the loop alive for ever.)"""
    found = _SETS.get(loop)
    if found is None:
        found = EpollReadiness(loop) if hasattr(select, "epoll") else LoopReadiness(loop)
        _SETS[loop] = found
    return found


async def recv(sock: socket.socket, size: int) -> bytes:
    """One ``recv`` of the non-blocking ``sock`` once it is readable, as ``loop.sock_recv``
    does, on the loop's readiness set: no reader added and removed per read, no done-callback
    (the UDP DNS exchange's read, the TLS connection's). A socket error (a refusal, a reset)
    is raised."""
    ready = for_loop(asyncio.get_running_loop())
    while True:
        await ready.wait(sock.fileno(), False)
        try:
            return sock.recv(size)
        except (BlockingIOError, InterruptedError):  # woken without data (it can happen)
            continue
