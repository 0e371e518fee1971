"""One DNS question over UDP (TCP when the answer is truncated) or TCP, under ONE deadline.

dnspython's ``udp_with_fallback`` gives the TCP retry a fresh timeout (a truncated answer then a
slow TCP server cost twice the budget), reads from an unconnected socket (a closed port's ICMP
refusal is never seen, so the whole timeout is spent) and ends the measurement on the first
reply whose id is wrong. Here:

- the deadline is fixed when the exchange starts; the UDP wait and the TCP retry share it;
- the UDP socket is connected, so the kernel drops datagrams from any other source and reports
  an ICMP port-unreachable as ``ECONNREFUSED`` at once;
- a datagram that is not a valid answer to *this* question (too short, wrong id, QR clear,
  unparsable, another question) is set aside and the wait goes on: a spoofed or stray reply
  cannot end the measurement before the real answer. If only such replies came by the
  deadline, the exchange fails as ``dns.malformed`` naming the last one, not as a silence.

The question is either a ``dns.message`` query (PTR lookups; read with ``from_wire`` and
checked with ``is_response``) or a prebuilt wire form (``dns_wire``) whose answers the fast
reader (``dns_read``) reads; whatever that reader does not vouch for, and any answer to another
question, is judged by the ``from_wire`` path, so both give the same verdicts and reasons.

Failures are raised as :class:`ExchangeError` carrying the ``error.type`` to record.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass

import dns.flags
import dns.message

from pipeline.probe import readiness
from pipeline.probe.dns_read import Unread, WireMessage, read_message
from pipeline.probe.dns_wire import QueryWire
from pipeline.probe.source import local_addr

_HEADER = 12
_MAX_DATAGRAM = 65535
_DRAIN = 64  # datagrams read per wake-up beyond the first (``_read_queued``)
UNPARSABLE = "an unparsable reply "  # how a set-aside reason starts when from_wire failed


class ExchangeError(Exception):
    """A classified failure of the exchange: ``error_type`` is what the document records."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass(slots=True)
class _SetAside:
    """Replies that were not the answer: counted, the last one named (a flood costs no memory)."""

    count: int = 0
    last: str = ""

    def add(self, reason: str) -> None:
        self.count += 1
        self.last = reason


# A parsed answer: the fast reader's, or dnspython's where the reference path read it.
Response = WireMessage | dns.message.Message


@dataclass(frozen=True, slots=True)
class Exchange:
    response: Response
    wire: bytes
    tcp: bool


class _Reference:
    """A ``dns.message`` query: answers read by ``from_wire`` and checked by ``is_response``."""

    def __init__(self, query: dns.message.Message) -> None:
        self.query = query
        self.id = query.id
        self.wire = query.to_wire()

    def read(self, data: bytes) -> tuple[Response | None, str]:
        """The response to this question, or None and why not: ``UNPARSABLE`` + the parser's
        complaint, or a reply to another question."""
        try:
            message = dns.message.from_wire(data)
        except Exception as exc:  # any parse failure of hostile bytes
            return None, f"{UNPARSABLE}({type(exc).__name__}: {exc})"
        if not self.query.is_response(message):
            got = "; ".join(q.to_text() for q in message.question) or "no question"
            return None, f"a reply to another question ({got})"
        return message, ""


class _Fast:
    """A prebuilt query (``dns_wire``) with its id: answers read by ``dns_read``. What the fast
    reader does not vouch for, and an answer to another question, go to the reference path,
    so every verdict and every reason is the one ``from_wire`` and ``is_response`` give."""

    def __init__(self, query: QueryWire, qid: int) -> None:
        self.query = query
        self.id = qid
        self.wire = query.with_id(qid)

    def read(self, data: bytes) -> tuple[Response | None, str]:
        q = self.query
        try:
            message = read_message(data)
        except Unread:
            return self._reference(data)
        if not message.answers(q.qname, q.rdtype, q.rdclass):
            return self._reference(data)
        return message, ""

    def _reference(self, data: bytes) -> tuple[Response | None, str]:
        return _Reference(dns.message.from_wire(self.wire)).read(data)


Question = _Reference | _Fast


def _verdict(question: Question, data: bytes) -> tuple[str, Response | None, str]:
    """``("ok", message, "")``, ``("truncated", None, "")`` or ``("ignore", None, reason)``."""
    if len(data) < _HEADER:
        return "ignore", None, f"a {len(data)}-byte datagram, shorter than a DNS header"
    rid, flags = struct.unpack("!HH", data[:4])
    if rid != question.id:
        return "ignore", None, f"a reply with id {rid:#06x}, expected {question.id:#06x}"
    if not flags & dns.flags.QR:
        return "ignore", None, "a datagram with the QR bit clear (not a response)"
    if flags & dns.flags.TC:
        # A truncated answer may be cut anywhere; only TCP gives the whole of it.
        return "truncated", None, ""
    message, reason = question.read(data)
    if message is None:
        return "ignore", None, reason
    return "ok", message, ""


def _udp_verdict(query: dns.message.Message, data: bytes
                 ) -> tuple[str, Response | None, str]:
    """The datagram filter for a ``dns.message`` query (what the fuzz tests feed)."""
    return _verdict(_Reference(query), data)


async def _udp(question: Question, host: str, port: int, ignored: _SetAside,
               source: str | None = None) -> Exchange | None:
    """The UDP answer, or None when it was truncated (the caller retries over TCP).

    A plain non-blocking socket read when the probe's readiness set says it is readable
    (``readiness.recv``, ``loop.sock_recv`` without its reader added and removed per read)
    rather than a datagram transport and protocol: one query needs one socket, one send and a
    few receives, and the transport's machinery (waiter, protocol callbacks, a queue) was a
    good part of a query's CPU. Connected,
    so the kernel drops datagrams from anyone else and a closed port's ICMP refusal comes back
    from ``recv`` as ``ConnectionRefusedError`` at once.
    """
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        bind = local_addr(source, host)
        if bind is not None:  # [probe] source_address
            sock.bind(bind)
        sock.connect((host, port))
        try:
            sock.send(question.wire)  # a datagram goes whole or not at all
        except BlockingIOError:  # a full send buffer: wait for room
            await loop.sock_sendall(sock, question.wire)
        while True:
            try:
                first = await readiness.recv(sock, _MAX_DATAGRAM)
            except ConnectionRefusedError as exc:
                raise _refused(host, port) from exc
            done, exchange = _take(question, first, ignored)
            if done:  # nearly always: the answer, and nothing behind it worth a system call
                return exchange
            queued: list[bytes] = []
            refused = _read_queued(sock, queued)
            for item in queued:
                done, exchange = _take(question, item, ignored)
                if done:
                    return exchange
            if refused is not None:
                raise _refused(host, port) from refused


def _take(question: Question, data: bytes, ignored: _SetAside) -> tuple[bool, Exchange | None]:
    """``(True, the exchange)`` for the answer, ``(True, None)`` for a truncated one (TCP next),
    ``(False, None)`` for a datagram set aside (its reason kept)."""
    verdict, message, reason = _verdict(question, data)
    if verdict == "ok":
        assert message is not None
        return True, Exchange(message, data, tcp=False)
    if verdict == "truncated":
        return True, None
    ignored.add(reason)
    return False, None


def _refused(host: str, port: int) -> ExchangeError:
    return ExchangeError("dns.network", f"{host}:{port} refused the query (ICMP port "
                         "unreachable)")


def _read_queued(sock: socket.socket, into: list[bytes]) -> ConnectionRefusedError | None:
    """Append the datagrams waiting behind one just received that was not the answer (the
    answer ends the exchange: what may wait behind it is never read), read without a loop round
    trip (at most ``_DRAIN``, so that a flood cannot keep the loop from other work or from the
    deadline); the refusal that stopped the reading, if one did, for after those datagrams.

    A flood of stray replies otherwise cost one loop round trip per datagram. Reading faster
    narrows, but cannot close, the window in which a full socket buffer drops the real answer
    behind a flood larger than the buffer: that is a race with the sender (the flood test in
    tests/faults/test_faults_dns_transport.py is therefore bounded by the buffer)."""
    for _ in range(_DRAIN):
        try:
            into.append(sock.recv(_MAX_DATAGRAM))
        except BlockingIOError:
            return None
        except ConnectionRefusedError as exc:
            return exc
    return None


async def _tcp(question: Question, host: str, port: int, source: str | None = None
               ) -> Exchange:
    reader, writer = await asyncio.open_connection(host, port,
                                                   local_addr=local_addr(source, host))
    try:
        wire = question.wire
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            data = await reader.readexactly(length)
            if len(data) >= 2 and struct.unpack("!H", data[:2])[0] != question.id:
                continue  # not ours (a pipelining server's stray answer): read the next one
            message, reason = question.read(data)
            if message is None and reason.startswith(UNPARSABLE):
                raise ExchangeError("dns.malformed", "unparsable TCP answer "
                                    + reason.removeprefix(UNPARSABLE))
            if message is None:
                raise ExchangeError("dns.malformed", "the TCP answer is not a response to "
                                    "the question")
            return Exchange(message, data, tcp=True)
    finally:
        writer.close()


async def exchange(query: dns.message.Message, host: str, port: int, timeout: float,
                   tcp_only: bool = False, source: str | None = None) -> Exchange:
    """Ask ``host:port`` (from ``source`` when given); everything (UDP wait, TCP connect, TCP
    read) ends by one deadline."""
    return await _exchange(_Reference(query), (host, port), timeout, tcp_only, source)


async def exchange_wire(query: QueryWire, qid: int, server: tuple[str, int], timeout: float,
                        tcp_only: bool = False, source: str | None = None) -> Exchange:
    """``exchange`` of a prebuilt query sent with id ``qid`` to ``server`` (host, port),
    answers read by ``dns_read`` (``Exchange.response`` is then a ``WireMessage``, or a
    ``Message`` where the reader left the answer to ``from_wire``)."""
    return await _exchange(_Fast(query, qid), server, timeout, tcp_only, source)


async def _exchange(question: Question, server: tuple[str, int], timeout: float,
                    tcp_only: bool, source: str | None) -> Exchange:
    host, port = server
    ignored = _SetAside()
    truncated = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with asyncio.timeout_at(deadline):
            if not tcp_only:
                answer = await _udp(question, host, port, ignored, source)
                if answer is not None:
                    return answer
                truncated = True
            return await _tcp(question, host, port, source)
    except TimeoutError as exc:
        if ignored.count and not truncated:  # a TCP retry that ran out is a timeout
            n = ignored.count
            raise ExchangeError(
                "dns.malformed", f"no valid answer within {timeout:g}s; ignored {n} "
                f"repl{'y' if n == 1 else 'ies'}, the last: {ignored.last}") from exc
        after = " (TCP retry after a truncated UDP answer)" if truncated else ""
        raise ExchangeError("dns.timeout", f"no answer within {timeout:g}s{after}") from exc
    except (ConnectionRefusedError, ConnectionResetError, asyncio.IncompleteReadError) as exc:
        if not (tcp_only or truncated):
            raise
        what = "TCP retry after a truncated UDP answer" if truncated else "TCP query"
        if isinstance(exc, asyncio.IncompleteReadError):
            reason = f"connection closed after {len(exc.partial)} of {exc.expected} bytes"
        else:
            reason = str(exc) or type(exc).__name__
        raise ExchangeError("dns.network", f"{what} to {host}:{port}: {reason}") from exc
