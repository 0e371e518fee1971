"""TLS edges of the running lab: openssl s_client sees the lab certificate; broken edges break."""

from __future__ import annotations

import socket
import ssl
import subprocess

import pytest

from lab.stack import LabStack

STAGING = "acme-staging-v02.api.lab.test"


def s_client(lab: LabStack, address: str, name: str = STAGING) -> str:
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"{address}:{lab.edge_port}", "-servername", name,
         "-CAfile", str(lab.ca_path), "-verify_hostname", name, "-verify_return_error",
         "-brief"],
        input="", capture_output=True, text=True, timeout=10)
    return done.stdout + done.stderr


def edge_of(lab: LabStack, behaviour: str) -> str:
    return next(a for a, b in lab.scenario.edge_behaviour.items() if b == behaviour)


def test_good_edge_presents_the_lab_certificate(lab: LabStack) -> None:
    out = s_client(lab, "127.60.0.20")
    assert "Verification: OK" in out, out
    assert "Peer certificate: O = edgewatch lab" in out, out
    assert f"Verified peername: {STAGING}" in out, out
    assert lab.truth.edge_outcome("127.60.0.20") is None


def test_expired_and_wrong_name_edges_fail_verification(lab: LabStack) -> None:
    expired = s_client(lab, edge_of(lab, "expired"))
    assert "certificate has expired" in expired, expired
    wrong = s_client(lab, edge_of(lab, "wrong_name"))
    assert "hostname mismatch" in wrong, wrong
    for b in ("expired", "wrong_name"):
        assert lab.truth.edge_outcome(edge_of(lab, b)) == "tls.verify"


def test_refusing_edge_resets(lab: LabStack) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((edge_of(lab, "refuse"), lab.edge_port), timeout=1)


def test_blackholed_edge_times_out(lab: LabStack) -> None:
    with pytest.raises(TimeoutError):
        socket.create_connection((edge_of(lab, "blackhole"), lab.edge_port), timeout=0.3)


def test_tls_abort_edge_fails_the_handshake(lab: LabStack) -> None:
    ctx = ssl.create_default_context(cafile=str(lab.ca_path))
    with socket.create_connection((edge_of(lab, "tls_abort"), lab.edge_port), timeout=1) as raw, \
            pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        ctx.wrap_socket(raw, server_hostname=STAGING).do_handshake()


def test_http_directory_over_tls(lab: LabStack) -> None:
    ctx = ssl.create_default_context(cafile=str(lab.ca_path))
    with socket.create_connection(("127.60.0.20", lab.edge_port), timeout=2) as raw, \
            ctx.wrap_socket(raw, server_hostname=STAGING) as tls:
        tls.sendall(f"GET /directory HTTP/1.1\r\nHost: {STAGING}\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"X-Lab-Edge: 127.60.0.20" in head
    assert b'"newNonce": "https://acme-staging-v02.api.lab.test/acme/new-nonce"' in body
