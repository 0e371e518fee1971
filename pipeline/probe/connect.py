"""Would a firewall rule for this address actually let a client reach the API?

TCP connect and TLS handshake are timed separately (the split tells a dead edge from a slow one),
SNI is the target name, and certificate verification is recorded apart from the handshake: an
edge that completes a handshake with the wrong certificate is reachable but unusable, and the
report must be able to tell that from one that never answers. The verifying handshake is tried
first; only when verification fails is a second, non-verifying handshake made to record what the
edge presented.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID


@dataclass(frozen=True, slots=True)
class Certificate:
    subject_cn: str | None
    issuer_cn: str | None
    alt_names: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    sha256: str


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


def tls_contexts(ca_file: Path | None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A verifying context (system store, or the given CA) and a non-verifying one."""
    verifying = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    lenient = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    lenient.check_hostname = False
    lenient.verify_mode = ssl.CERT_NONE
    return verifying, lenient


def _cn(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def describe_certificate(der: bytes) -> Certificate:
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        alt = tuple(str(n) for n in san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        alt = ()
    return Certificate(
        subject_cn=_cn(cert.subject),
        issuer_cn=_cn(cert.issuer),
        alt_names=alt,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=hashlib.sha256(der).hexdigest(),
    )


def _classify_connect_error(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, TimeoutError):
        return "tcp.timeout", "no answer to SYN within the connect timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "tcp.refused", "connection refused (RST)"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "tcp.unreachable", exc.strerror or str(exc)
    return "tcp.error", str(exc) or type(exc).__name__


async def _connect(address: str, port: int, timeout: float):
    return await asyncio.wait_for(asyncio.open_connection(address, port), timeout)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 0.5)


async def _http_get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str,
    timeout: float,
) -> tuple[int, int]:
    started = time.perf_counter()
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: edgewatch\r\n" \
              "Accept: */*\r\nConnection: close\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), timeout)
    parts = line.decode("latin-1").split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {line[:60]!r}")
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader.read(65536), timeout)
    return int(parts[1]), int((time.perf_counter() - started) * 1e6)


async def probe_connect(
    address: str,
    port: int,
    server_name: str,
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    connect_timeout: float,
    tls_timeout: float,
    http_path: str | None = None,
    http_timeout: float = 5.0,
) -> ConnectResult:
    """Connect, handshake (verifying), optionally GET; classify whatever fails."""
    verifying, lenient = contexts
    base = {"address": address, "port": port, "server_name": server_name}
    started = time.perf_counter()
    try:
        reader, writer = await _connect(address, port, connect_timeout)
    except (TimeoutError, OSError) as exc:
        kind, msg = _classify_connect_error(exc)
        return ConnectResult(**base, error_type=kind, error_message=msg)
    connect_us = int((time.perf_counter() - started) * 1e6)
    tcp = {"tcp_established": True, "tcp_connect_us": connect_us}

    hs_started = time.perf_counter()
    try:
        await writer.start_tls(verifying, server_hostname=server_name,
                               ssl_handshake_timeout=tls_timeout)
    except ssl.SSLCertVerificationError as exc:
        await _close(writer)
        return await _describe_unverified(base, tcp, lenient, str(exc.verify_message or exc),
                                          connect_timeout, tls_timeout)
    except (TimeoutError, ssl.SSLError, OSError, ConnectionError) as exc:
        await _close(writer)
        kind = "tls.timeout" if isinstance(exc, TimeoutError) else "tls.handshake"
        return ConnectResult(**base, **tcp, error_type=kind,
                             error_message=str(exc) or type(exc).__name__)
    handshake_us = int((time.perf_counter() - hs_started) * 1e6)
    tls = _tls_facts(writer)
    result = {**base, **tcp, **tls, "tls_established": True, "tls_verified": True,
              "tls_handshake_us": handshake_us}
    if http_path:
        try:
            status, total = await _http_get(reader, writer, server_name, http_path, http_timeout)
            result.update(http_status=status, http_total_us=total)
        except (TimeoutError, OSError, ValueError, ConnectionError) as exc:
            result.update(error_type="http.error", error_message=str(exc) or type(exc).__name__)
    await _close(writer)
    return ConnectResult(**result)


def _tls_facts(writer: asyncio.StreamWriter) -> dict:
    sslobj = writer.get_extra_info("ssl_object")
    if sslobj is None:
        return {}
    der = sslobj.getpeercert(binary_form=True)
    cipher = sslobj.cipher()
    return {
        "tls_version": sslobj.version(),
        "tls_cipher": cipher[0] if cipher else None,
        "certificate": describe_certificate(der) if der else None,
    }


async def _describe_unverified(
    base: dict, tcp: dict, lenient: ssl.SSLContext, reason: str,
    connect_timeout: float, tls_timeout: float,
) -> ConnectResult:
    """The handshake works but the certificate does not verify: record what was presented."""
    facts: dict = {}
    handshake_us = None
    try:
        _reader, writer = await _connect(base["address"], base["port"], connect_timeout)
        started = time.perf_counter()
        await writer.start_tls(lenient, server_hostname=base["server_name"],
                               ssl_handshake_timeout=tls_timeout)
        handshake_us = int((time.perf_counter() - started) * 1e6)
        facts = _tls_facts(writer)
        await _close(writer)
    except (TimeoutError, OSError, ssl.SSLError, ConnectionError):
        pass
    return ConnectResult(**base, **tcp, **facts, tls_established=True, tls_verified=False,
                         tls_handshake_us=handshake_us, error_type="tls.verify",
                         error_message=reason)
