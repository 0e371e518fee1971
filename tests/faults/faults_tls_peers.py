"""Hostile TLS and HTTP peers on loopback, and the certificates they present.

Every peer is a small threaded server on 127.0.0.1 with an ephemeral port, started as a context
manager (``with start_edge("silent") as edge: ... edge.host, edge.port``), so a fault test, an
end-to-end cycle test or a CLI test can ask for "an edge that does X" without knowing how.
Threads (not the test's event loop) serve the peers: a peer keeps misbehaving while the code
under test blocks, and a subprocess (``edgewatch check``) can talk to it too.

Certificates come from :class:`TestPKI`, a CA of our own. Leaves are assembled by a tiny DER
encoder rather than ``cryptography``'s builder, because the point is to produce certificates
that OpenSSL loads and verifies but ``cryptography`` refuses to parse (a ``*`` in a
PrintableString, a Latin-1 T61String, a truncated extension, a 3-byte iPAddress, a UTCTime
without seconds, a non-UTF-8 dNSName) — no builder will write those.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faults_dns_peers import addresses_reply, dns_peer

EDGE_NAME = "edge.faults.test"

# --- a tiny DER encoder ---------------------------------------------------------------------

PRINTABLE, T61, IA5, UTF8 = 0x13, 0x14, 0x16, 0x0C
UTCTIME, GENTIME = 0x17, 0x18


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def der_set(*items: bytes) -> bytes:
    return tlv(0x31, b"".join(items))


def explicit(n: int, content: bytes) -> bytes:
    return tlv(0xA0 | n, content)


def integer(n: int) -> bytes:
    return tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def octets(b: bytes) -> bytes:
    return tlv(0x04, b)


def oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def name(cn: bytes, tag: int = UTF8) -> bytes:
    """A Name with one CN attribute, its string type chosen by the caller."""
    return seq(der_set(seq(oid("2.5.4.3"), tlv(tag, cn))))


def extension(ext_oid: str, value: bytes, critical: bool = False) -> bytes:
    crit = tlv(0x01, b"\xff") if critical else b""
    return seq(oid(ext_oid), crit, octets(value))


def san(*general_names: bytes) -> bytes:
    return extension("2.5.29.17", seq(*general_names))


def dns_name(value: bytes) -> bytes:
    return tlv(0x82, value)  # [2] IMPLICIT IA5String


def ip_address(value: bytes) -> bytes:
    return tlv(0x87, value)  # [7] IMPLICIT OCTET STRING


def utc(ts: dt.datetime, seconds: bool = True) -> bytes:
    return tlv(UTCTIME, ts.strftime("%y%m%d%H%M%SZ" if seconds else "%y%m%d%H%MZ").encode())


ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"))
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    cert_file: Path
    key_file: Path
    der: bytes


@dataclass
class TestPKI:
    """A CA of our own and a factory of (possibly malformed) leaves it signs."""

    directory: Path
    ca_key: ec.EllipticCurvePrivateKey = field(init=False)
    ca_cert: x509.Certificate = field(init=False)
    ca_file: Path = field(init=False)
    leaf_key: ec.EllipticCurvePrivateKey = field(init=False)
    key_file: Path = field(init=False)
    _serial: int = 1000

    __test__ = False  # not a pytest class

    def __post_init__(self) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgewatch faults CA")])
        self.ca_cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.ca_key.public_key()).serial_number(1)
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file = self.directory / "ca.pem"
        self.ca_file.write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.key_file = self.directory / "leaf.key"
        self.key_file.write_bytes(self.leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    def leaf(
        self,
        *,
        subject: bytes | None = None,
        extensions: tuple[bytes, ...] | None = None,
        not_before: bytes | None = None,
        not_after: bytes | None = None,
        self_signed: bool = False,
    ) -> Leaf:
        """A leaf for ``EDGE_NAME`` signed by the CA; every part can be replaced by raw DER."""
        self._serial += 1
        spki = self.leaf_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        subject = subject or name(EDGE_NAME.encode())
        issuer = subject if self_signed else self.ca_cert.subject.public_bytes()
        if extensions is None:
            extensions = (san(dns_name(EDGE_NAME.encode())),)
        tbs = seq(
            explicit(0, integer(2)),
            integer(self._serial),
            ECDSA_SHA256,
            issuer,
            seq(not_before or utc(NOW - dt.timedelta(hours=1)),
                not_after or utc(NOW + dt.timedelta(days=7))),
            subject,
            spki,
            explicit(3, seq(*extensions)) if extensions else b"",
        )
        signer = self.leaf_key if self_signed else self.ca_key
        signature = signer.sign(tbs, ec.ECDSA(hashes.SHA256()))
        der = seq(tbs, ECDSA_SHA256, tlv(0x03, b"\x00" + signature))
        path = self.directory / f"leaf-{self._serial}.pem"
        path.write_text(ssl.DER_cert_to_PEM_cert(der))
        return Leaf(path, self.key_file, der)


@cache
def shared_pki() -> TestPKI:
    """One CA per test session (key generation is the slow part), removed when it ends."""
    directory = Path(tempfile.mkdtemp(prefix="edgewatch-faults-pki-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return TestPKI(directory)


def unparsable_leaves(pki: TestPKI) -> dict[str, Leaf]:
    """Certificates OpenSSL loads and verifies but ``cryptography`` cannot (fully) parse."""
    good_san = dns_name(EDGE_NAME.encode())
    return {
        "printable_star_cn": pki.leaf(subject=name(b"*.example", PRINTABLE)),
        "t61_latin1_cn": pki.leaf(subject=name(b"caf\xe9.example", T61)),
        "truncated_policies": pki.leaf(extensions=(
            san(good_san), extension("2.5.29.32", b"\x30\x10\x30\x0e\x06\x04\x55"))),
        "ip_san_3_bytes": pki.leaf(extensions=(san(good_san, ip_address(b"\x7f\x00\x01")),)),
        "utctime_no_seconds": pki.leaf(
            not_before=utc(NOW - dt.timedelta(hours=1), seconds=False)),
    }


def server_context(leaf: Leaf, *, tls10_only: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if tls10_only:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():  # deprecated: that is the point of this peer
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.load_cert_chain(leaf.cert_file, leaf.key_file)
    return ctx


# --- peers ----------------------------------------------------------------------------------

Handler = Callable[[socket.socket, "Peer"], None]


class Peer:
    """A threaded loopback server: every accepted connection goes to ``handler`` in a thread.

    Leaving the context closes the listener and every connection (a handler blocked in
    ``recv`` wakes up with an error), so no peer outlives its test.
    """

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        self.handler = handler
        self.host = host
        self.port = 0
        self.stopping = threading.Event()
        self.accepted = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def __enter__(self) -> Peer:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, 0))
        ls.listen(64)
        ls.settimeout(0.1)
        self._listener = ls
        self.port = ls.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            with self._lock:
                self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError, ssl.SSLError):
            self.handler(conn, self)
        with contextlib.suppress(OSError):
            conn.close()

    def hold(self) -> None:
        """Keep the connection open, saying nothing, until the peer is stopped."""
        self.stopping.wait(60)

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()
        for t in threads:
            t.join(5)


# Raw TCP behaviours (the peer is not a TLS server at all) ------------------------------------

def silent(conn: socket.socket, peer: Peer) -> None:
    """Accepts and never speaks: the ClientHello is never answered."""
    peer.hold()


def close_after_client_hello(conn: socket.socket, peer: Peer) -> None:
    conn.recv(4096)
    conn.close()


def garbage_server_hello(conn: socket.socket, peer: Peer) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nthis is not a ServerHello\r\n\r\n" * 4)
    peer.hold()


def reset_during_handshake(conn: socket.socket, peer: Peer) -> None:
    conn.recv(4096)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # linger 0: RST instead of FIN


def drip_handshake(ctx: ssl.SSLContext, interval: float = 0.2) -> Handler:
    """A real TLS server whose handshake flight is sent one byte every ``interval`` seconds:
    every byte resets no timer, the handshake as a whole must still be bounded."""
    def handler(conn: socket.socket, peer: Peer) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls_obj = ctx.wrap_bio(incoming, outgoing, server_side=True)
        incoming.write(conn.recv(16384))
        with contextlib.suppress(ssl.SSLWantReadError):
            tls_obj.do_handshake()
        for b in outgoing.read():
            if peer.stopping.wait(interval):
                return
            conn.sendall(bytes([b]))
        peer.hold()
    return handler


# TLS, then an HTTP behaviour -----------------------------------------------------------------

HttpBehaviour = Callable[[ssl.SSLSocket, Peer], None]


def tls(ctx: ssl.SSLContext, then: HttpBehaviour | None = None) -> Handler:
    def handler(conn: socket.socket, peer: Peer) -> None:
        conn.settimeout(10)
        tls_conn = ctx.wrap_socket(conn, server_side=True)
        with peer._lock:
            peer._conns.append(tls_conn)
        (then or http_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))(tls_conn, peer)
    return handler


def _read_request(conn: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def http_answer(raw: bytes, *, then_hold: bool = False) -> HttpBehaviour:
    def behaviour(conn: ssl.SSLSocket, peer: Peer) -> None:
        _read_request(conn)
        conn.sendall(raw)
        if then_hold:
            peer.hold()
        else:
            with contextlib.suppress(OSError, ssl.SSLError):
                conn.unwrap()
    return behaviour


def http_status(code: int, reason: str = "Status") -> HttpBehaviour:
    return http_answer(f"HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\n"
                       "Connection: close\r\n\r\n".encode())


def http_reset_after_request(conn: ssl.SSLSocket, peer: Peer) -> None:
    _read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def http_endless_body(conn: ssl.SSLSocket, peer: Peer) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.0 200\r\n\r\n")
    while not peer.stopping.is_set():
        conn.sendall(b"x" * 65536)


def http_no_answer(conn: ssl.SSLSocket, peer: Peer) -> None:
    _read_request(conn)
    peer.hold()


def http_drip(conn: ssl.SSLSocket, peer: Peer) -> None:
    """One byte of a status line every 200 ms, never finishing it."""
    _read_request(conn)
    for b in b"HTTP/1.1 200 OK but very slowly" * 100:
        if peer.stopping.wait(0.2):
            return
        conn.sendall(bytes([b]))


def http_huge_header(conn: ssl.SSLSocket, peer: Peer) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * 300_000 + b"\r\n\r\n")
    peer.hold()


def http_endless_status_line(conn: ssl.SSLSocket, peer: Peer) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 " + b"x" * 200_000)
    peer.hold()


# --- "an edge that does X" ------------------------------------------------------------------

def _ok_leaf(pki: TestPKI) -> Leaf:
    return pki.leaf()


EDGE_KINDS: dict[str, Callable[[TestPKI], Handler]] = {
    "ok": lambda pki: tls(server_context(_ok_leaf(pki))),
    "silent": lambda pki: silent,
    "close_after_client_hello": lambda pki: close_after_client_hello,
    "garbage_server_hello": lambda pki: garbage_server_hello,
    "reset_during_handshake": lambda pki: reset_during_handshake,
    "tls10_only": lambda pki: tls(server_context(_ok_leaf(pki), tls10_only=True)),
    "expired": lambda pki: tls(server_context(pki.leaf(
        not_before=utc(NOW - dt.timedelta(days=10)), not_after=utc(NOW - dt.timedelta(days=1))))),
    "self_signed": lambda pki: tls(server_context(pki.leaf(self_signed=True))),
    "non_utf8_dns_san": lambda pki: tls(server_context(pki.leaf(extensions=(
        san(dns_name(b"caf\xe9.faults.test"), dns_name(EDGE_NAME.encode())),)))),
    "tls_then_silent": lambda pki: tls(server_context(_ok_leaf(pki)), lambda c, p: p.hold()),
    "drip_handshake": lambda pki: drip_handshake(server_context(_ok_leaf(pki))),
    "http_reset_after_request": lambda pki: tls(server_context(_ok_leaf(pki)),
                                                http_reset_after_request),
    "http_endless_body": lambda pki: tls(server_context(_ok_leaf(pki)), http_endless_body),
    "http_503": lambda pki: tls(server_context(_ok_leaf(pki)),
                                http_status(503, "Service Unavailable")),
    "http_404": lambda pki: tls(server_context(_ok_leaf(pki)), http_status(404, "Not Found")),
    "http_302": lambda pki: tls(server_context(_ok_leaf(pki)), http_status(302, "Found")),
    "http_garbage": lambda pki: tls(server_context(_ok_leaf(pki)),
                                    http_answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")),
    "http_no_answer": lambda pki: tls(server_context(_ok_leaf(pki)), http_no_answer),
    "http_drip": lambda pki: tls(server_context(_ok_leaf(pki)), http_drip),
    "http_huge_header": lambda pki: tls(server_context(_ok_leaf(pki)), http_huge_header),
    "http_endless_status_line": lambda pki: tls(server_context(_ok_leaf(pki)),
                                                http_endless_status_line),
    "http_early_hints": lambda pki: tls(server_context(_ok_leaf(pki)), http_answer(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")),
    "http_closed_mid_line": lambda pki: tls(server_context(_ok_leaf(pki)),
                                            http_answer(b"HTTP/1.1 20")),
}
"""Edges by behaviour; a wrong name is any edge probed with another server name."""


@contextlib.contextmanager
def start_edge(kind: str | Handler, pki: TestPKI | None = None) -> Iterator[Peer]:
    """Start "an edge that does ``kind``" (a key of EDGE_KINDS, or a handler) on loopback."""
    handler = EDGE_KINDS[kind](pki or shared_pki()) if isinstance(kind, str) else kind
    with Peer(handler) as peer:
        yield peer


@contextlib.contextmanager
def start_leaf_edge(leaf: Leaf) -> Iterator[Peer]:
    """An edge presenting ``leaf`` and answering HTTP 200."""
    with Peer(tls(server_context(leaf))) as peer:
        yield peer


# --- a DNS responder that sends every name to loopback --------------------------------------

@contextlib.contextmanager
def dns_responder(answer: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """UDP on 127.0.0.1 answering every A question with ``answer`` (the DNS fault peer)."""
    with dns_peer(addresses_reply(answer)) as peer:
        yield peer.host, peer.port
