"""Would a firewall rule for this address actually let a client reach the API?

TCP connect and TLS handshake are timed separately (the split tells a dead edge from a slow one),
SNI is the target name, and certificate verification is recorded apart from the handshake: an
edge that completes a handshake with the wrong certificate is reachable but unusable, and the
report must be able to tell that from one that never answers. The verifying handshake is tried
first; only when verification fails is a second, non-verifying handshake made to record what the
edge presented.

Whatever the peer does, ``probe_connect`` returns one ``ConnectResult`` within one deadline:
``connect + tls (+ http when a path is asked)`` seconds for the whole check. Each phase is
bounded by its own timeout and by what is left of that deadline; the second, non-verifying
handshake shares what the first left; the close is graceful (our close_notify, sent at once
when the socket's buffer takes it, else waited for at most ``CLOSE_GRACE``, within what is
left) and is an abort otherwise, and always after a failed handshake (the stream of
a failed handshake is left in an unknown state). A catch-all at the boundary turns anything
unforeseen into ``<phase>.error`` naming the exception type, so a peer can never cost a cycle.

The connection is OpenSSL on memory BIOs over a non-blocking socket, on readiness callbacks
(``probe.tls_socket``, which says why that path): the check awaits one loop future at a time
(the connect and handshake together, then each HTTP read), so a cancelled check (a timeout, a
shutdown abandoning the cycle) closes its socket at once; no thread is ever left blocked in a
handshake. The connection calls back the moment TCP is up, so the connect is timed and the
handshake's bound set then, as if the two were awaited apart. The phase bounds are kept by one
loop timer per check (``_Check``), not by an ``asyncio.timeout`` scope per phase: see there why.
"""

from __future__ import annotations

import asyncio
import errno
import math
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.probe.certificate import Certificate, describe_certificate
from pipeline.probe.source import local_addr
from pipeline.probe.tls_socket import TlsSocket

__all__ = ["Certificate", "ConnectResult", "ConnectSpec", "describe_certificate",
           "probe_connect", "tls_contexts"]

CLOSE_GRACE = 0.25  # seconds a graceful (close_notify) close may take before the abort
MAX_INTERIM = 5  # 1xx interim responses skipped before the final status line
CERTIFICATE_CACHE = 1024  # certificate descriptions remembered (by DER), oldest dropped first
_CERTIFICATES: dict[tuple[bytes, bool], tuple[Certificate, str | None]] = {}


@dataclass(frozen=True, slots=True)
class ConnectResult:
    address: str
    port: int
    server_name: str
    tcp_established: bool = False
    tcp_connect_us: int | None = None
    tls_established: bool = False
    tls_verified: bool = False
    tls_handshake_us: int | None = None
    tls_version: str | None = None
    tls_cipher: str | None = None
    certificate: Certificate | None = None
    http_status: int | None = None
    http_total_us: int | None = None
    error_type: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_type is None


class _TolerantSSLObject(ssl.SSLObject):
    """For asyncio's TLS streams on the verifying context (DoT resolvers, through dnspython):
    once a handshake is done asyncio decodes the peer certificate (``getpeercert()``) and fails
    the connection, logging a traceback, when Python cannot decode what OpenSSL has already
    verified (a dNSName with byte 0xE9 raises UnicodeDecodeError). This keeps the connection.
    ``probe_connect``'s connections are of this class too and read the decode error through
    the base class (``_certificate``)."""

    def getpeercert(self, binary_form: bool = False) -> Any:
        try:
            return super().getpeercert(binary_form)
        except ValueError:
            return {}


def tls_contexts(ca_file: Path | None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A verifying context (system store, or the given CA) and a non-verifying one."""
    verifying = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    verifying.sslobject_class = _TolerantSSLObject
    lenient = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    lenient.check_hostname = False
    lenient.verify_mode = ssl.CERT_NONE
    return verifying, lenient


_TCP_TIMEOUT = ("tcp.timeout", "no answer to SYN within the connect timeout")


def _classify_connect_error(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, TimeoutError):  # the kernel's; the check's own timer records the same
        return _TCP_TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return "tcp.refused", "connection refused (RST)"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "tcp.unreachable", exc.strerror or str(exc)
    return "tcp.error", str(exc) or type(exc).__name__


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _us(since: float) -> int:
    return int((time.perf_counter() - since) * 1e6)


class _Check:
    """One check in progress: what is known so far survives whatever fails next; and the one
    loop timer that bounds every phase of it.

    Why one timer and not an ``asyncio.timeout`` scope per phase: four scopes per check (the
    backstop, connect, handshake, close) were the largest piece of the probe's own CPU in a
    CPU-time profile (each scope schedules and cancels a timer; cancelled timers stay in the
    loop's heap), docs/BENCHMARKS.md. Here ``enter`` moves the current phase's end; the timer is
    re-armed only when that end is *earlier* than the time it is set for. When it fires and finds
    a phase with a later end, it re-arms for it; otherwise the phase's time is up: the check's
    task is cancelled and ``probe_connect`` records ``on_expiry``, what the phase said a timeout
    in it means. A check whose phases each finish in milliseconds arms the timer once or twice.
    """

    __slots__ = ("_armed", "_cancelling", "_loop", "_task", "_timer", "conns", "deadline",
                 "expired", "fields", "on_expiry", "phase", "phase_end")

    def __init__(self, budget: float, fields: dict[str, Any]) -> None:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("probe_connect must run in a task")
        self._task = task
        self._cancelling = task.cancelling()
        self.deadline = self._loop.time() + budget
        self.fields = fields
        self.conns: list[TlsSocket] = []
        self.expired = False
        self._timer: asyncio.TimerHandle | None = None
        self._armed = math.inf
        self.phase = ""
        self.on_expiry: tuple[str | None, str | None] = (None, None)
        self.phase_end = self.deadline

    def enter(self, phase: str, cap: float, on_expiry: tuple[str | None, str | None]) -> float:
        """Start ``phase``, bounded by ``cap`` seconds and by the check's deadline; if its time
        runs out the check records ``on_expiry``. Returns the phase's bound in seconds."""
        now = self._loop.time()
        bound = max(0.0, min(cap, self.deadline - now))
        self.phase, self.on_expiry, self.phase_end = phase, on_expiry, now + bound
        if self.phase_end < self._armed:
            if self._timer is not None:
                self._timer.cancel()
            self._arm(self.phase_end)
        return bound

    def _arm(self, when: float) -> None:
        self._armed = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        if self.phase_end > self._armed:  # a later phase: its own end is still to come
            self._arm(self.phase_end)
            return
        self._timer = None
        self.expired = True
        self._task.cancel()

    def timed_out(self) -> bool:
        """Whether a cancellation that reached ``probe_connect`` was this check's own timer
        (then it is consumed) rather than the caller's (then it must propagate)."""
        return self.expired and self._task.uncancel() <= self._cancelling

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def result(self, error_type: str | None = None, message: str | None = None
               ) -> ConnectResult:
        return ConnectResult(**self.fields, error_type=error_type, error_message=message)


@dataclass(frozen=True, slots=True)
class ConnectSpec:
    """How one address is checked: the TLS contexts (verifying, lenient) of ``tls_contexts``,
    the per-phase timeouts and the optional HTTP path to GET once the handshake is done."""

    contexts: tuple[ssl.SSLContext, ssl.SSLContext]
    connect_timeout: float
    tls_timeout: float
    http_path: str | None = None
    http_timeout: float = 5.0
    source: str | None = None  # [probe] source_address: the address connections leave from

    @property
    def budget(self) -> float:
        """The check's whole deadline: connect + TLS (+ HTTP when a path is asked)."""
        return self.connect_timeout + self.tls_timeout + (
            self.http_timeout if self.http_path else 0.0)


async def probe_connect(address: str, port: int, server_name: str, spec: ConnectSpec
                        ) -> ConnectResult:
    """Connect, handshake (verifying), optionally GET; classify whatever happens. Never raises
    (except the caller's own cancellation) and never outlasts its deadline."""
    check = _Check(spec.budget, {"address": address, "port": port, "server_name": server_name})
    try:
        return await _run(check, spec)
    except asyncio.CancelledError:
        if check.timed_out():
            return check.result(*check.on_expiry)
        raise
    except Exception as exc:  # the boundary: a peer must never cost a cycle
        if check.phase == "close":  # the measurement is complete; the close cannot fail it
            return check.result(*check.on_expiry)
        return check.result(f"{check.phase}.error", f"{type(exc).__name__}: {exc}")
    finally:
        check.disarm()
        for conn in check.conns:
            conn.abort()


async def _run(check: _Check, spec: ConnectSpec) -> ConnectResult:
    verifying, lenient = spec.contexts
    tls_timeout = spec.tls_timeout
    started = time.perf_counter()
    hs_started = started

    def connected() -> None:  # called by the connection the moment TCP is up
        nonlocal hs_started
        check.fields.update(tcp_established=True, tcp_connect_us=_us(started))
        check.enter("tls", tls_timeout,
                    ("tls.timeout", f"no completed handshake within {tls_timeout:g} s"))
        hs_started = time.perf_counter()

    check.enter("tcp", spec.connect_timeout, _TCP_TIMEOUT)
    try:
        conn = _socket(check, spec.source)
        tls = await conn.open(check.fields["address"], check.fields["port"], verifying,
                              check.fields["server_name"], connected)
    except ssl.SSLCertVerificationError as exc:
        conn.abort()
        check.fields.update(tls_established=True, tls_verified=False)
        reason = str(exc.verify_message or exc)
        return await _describe_unverified(check, lenient, "tls.verify", reason, spec)
    except (ssl.SSLError, OSError, EOFError) as exc:
        if "tcp_established" not in check.fields:
            return check.result(*_classify_connect_error(exc))
        conn.abort()
        return check.result("tls.handshake", _handshake_why(exc))
    check.fields.update(tls_established=True, tls_verified=True,
                        tls_handshake_us=_us(hs_started))
    facts, decode_error = _tls_facts(tls)
    check.fields.update(facts)

    error: tuple[str, str] | None = None
    if decode_error:
        error = "tls.certificate_unparsable", _undecodable(decode_error)
    if spec.http_path:
        error = await _http_phase(check, conn, spec.http_path, spec.http_timeout) or error
    outcome = error or (None, None)
    if error is None or error[0] in ("http.status", "tls.certificate_unparsable"):
        await _close(check, conn, outcome)
    else:
        conn.abort()  # a stream in an unknown state: no close_notify exchange
    return check.result(*outcome)


def _socket(check: _Check, source: str | None = None) -> TlsSocket:
    """The check's connection, not yet connected (``TlsSocket.open`` does that, within the
    bounds the check's phases set); aborted at the check's end, whatever happens."""
    address = check.fields["address"]
    conn = TlsSocket.new(address, local_addr(source, address))
    check.conns.append(conn)
    return conn


def _undecodable(why: str) -> str:
    return f"OpenSSL verified the certificate but Python's ssl module cannot decode it ({why})"


def _handshake_why(exc: BaseException) -> str:
    if isinstance(exc, ConnectionResetError | EOFError | ssl.SSLEOFError) and (
            not str(exc) or "EOF occurred" in str(exc)):
        return "the peer closed the connection during the handshake"
    return _why(exc)


async def _close(check: _Check, conn: TlsSocket, outcome: tuple[str | None, str | None]
                 ) -> None:
    """Graceful close (our TLS close_notify, ``TlsSocket.close``), an abort if it fails. The
    close phase is bounded (``CLOSE_GRACE``, the check's timer) only when the close must wait
    for room in the socket's buffer: the alert nearly always goes out at once, and arming the
    timer for a close that cannot wait was a timer set and cancelled for nothing every check."""
    check.phase, check.on_expiry = "close", outcome  # what the boundary reads if this raises
    try:
        if conn.close_at_once():
            return
        check.enter("close", CLOSE_GRACE, outcome)
        await conn.close()
    except (OSError, ssl.SSLError):
        conn.abort()


def _tls_facts(tls: ssl.SSLObject) -> tuple[dict[str, Any], str | None]:
    """Version, cipher and the certificate; and why Python could not decode it, if it could
    not (a dNSName with byte 0xE9 raises UnicodeDecodeError where OpenSSL verified it): the
    check then records ``tls.certificate_unparsable`` with every fact of this handshake."""
    der = tls.getpeercert(binary_form=True)
    certificate, decode_error = _certificate(tls, der) if der else (None, None)
    cipher = tls.cipher()
    return {"tls_version": tls.version(), "tls_cipher": cipher[0] if cipher else None,
            "certificate": certificate}, decode_error


def _certificate(tls: ssl.SSLObject, der: bytes) -> tuple[Certificate, str | None]:
    """The description of ``der``, remembered: an edge presents the same certificate check
    after check, and describing it (x509 parse, SAN, SHA-256) costs more than the rest of the
    check's Python. The description depends only on the DER and on whether the handshake
    verified (only a verifying handshake has OpenSSL's decoding to fall back on)."""
    key = (der, tls.context.verify_mode != ssl.CERT_NONE)
    known = _CERTIFICATES.get(key)
    if known is None:
        decode_error = None
        try:
            # The base class's decode: the verifying context's ``_TolerantSSLObject`` (this
            # connection's class too, since it is made by ``wrap_bio``) would hide the error.
            decoded = ssl.SSLObject.getpeercert(tls)
        except ValueError as exc:
            decoded, decode_error = {}, f"{type(exc).__name__}: {exc}"
        known = describe_certificate(der, decoded), decode_error
        if len(_CERTIFICATES) >= CERTIFICATE_CACHE:
            _CERTIFICATES.pop(next(iter(_CERTIFICATES)))  # the oldest entry
        _CERTIFICATES[key] = known
    return known


async def _describe_unverified(
    check: _Check, lenient: ssl.SSLContext, error_type: str, reason: str, spec: ConnectSpec,
) -> ConnectResult:
    """A second, non-verifying handshake within what is left: record what was presented."""
    late = (error_type, f"{reason} (certificate not recorded: second handshake: timeout)")
    started = time.perf_counter()

    def connected() -> None:
        nonlocal started
        check.enter("tls", spec.tls_timeout, late)
        started = time.perf_counter()

    try:
        check.enter("tls", spec.connect_timeout, late)
        conn = _socket(check, spec.source)
        tls = await conn.open(check.fields["address"], check.fields["port"], lenient,
                              check.fields["server_name"], connected)
        check.fields.update(tls_handshake_us=_us(started), **_tls_facts(tls)[0])
        await _close(check, conn, (error_type, reason))
    except (OSError, ssl.SSLError, EOFError, ValueError) as exc:
        reason = f"{reason} (certificate not recorded: second handshake: {_why(exc)})"
    return check.result(error_type, reason)


async def _http_phase(check: _Check, conn: TlsSocket, path: str, timeout: float
                      ) -> tuple[str, str] | None:
    """GET the configured path; a status of 400 or more fails the check (``http.status``)."""
    bound = check.enter("http", timeout, ("http.timeout", ""))
    # The message names the bound just given (no await in between: nothing can expire first).
    check.on_expiry = ("http.timeout", f"no complete HTTP status line within {bound:g} s")
    started = time.perf_counter()
    try:
        status, reason = await _http_get(conn, check.fields["server_name"], path)
    except (OSError, ValueError, ssl.SSLError, EOFError) as exc:
        return "http.error", _why(exc)
    check.fields.update(http_status=status, http_total_us=_us(started))
    if status >= 400:
        return "http.status", f"HTTP {status} {reason}".rstrip()
    return None


async def _http_get(conn: TlsSocket, host: str, path: str) -> tuple[int, str]:
    """Send the request, read up to the final status line (1xx interim answers skipped)."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: edgewatch\r\n" \
              "Accept: */*\r\nConnection: close\r\n\r\n"
    await conn.send(request.encode())
    for _ in range(MAX_INTERIM + 1):
        status, reason = _status(await conn.readline("status line"))
        if not 100 <= status < 200 or status == 101:
            return status, reason
        while (await conn.readline("header line")).strip():
            pass  # the headers of an interim answer
    raise ValueError(f"more than {MAX_INTERIM} interim (1xx) responses")


def _status(line: bytes) -> tuple[int, str]:
    parts = line.decode("latin-1").split(None, 2)
    if (len(parts) < 2 or not parts[0].startswith("HTTP/") or len(parts[1]) != 3
            or not parts[1].isdigit()):
        raise ValueError(f"not an HTTP status line: {line[:60]!r}")
    reason = parts[2].strip() if len(parts) > 2 else ""
    return int(parts[1]), "".join(c for c in reason[:80] if c.isprintable())
