"""``edgewatch check`` against hostile edges: it prints its table with the classified error.

A tiny DNS responder of our own (dnspython, A 127.0.0.1 for any name) sends the checked name to
a hostile edge on loopback; the command runs as a user runs it, in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from faults_tls_peers import (
    EDGE_NAME,
    dns_responder,
    shared_pki,
    start_edge,
    start_leaf_edge,
    unparsable_leaves,
)

EDGEWATCH = Path(sys.executable).parent / "edgewatch"


def _check(tmp_path: Path, dns: tuple[str, int], edge_port: int, *extra: str
           ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEWATCH_", "ES_"))}
    return subprocess.run(
        [str(EDGEWATCH), "check", EDGE_NAME, "-r", f"{dns[0]}:{dns[1]}", "-p", str(edge_port),
         "--ca-file", str(shared_pki().ca_file), "--timeout", "1", *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def _result_column(out: str) -> str:
    row = next(line for line in out.splitlines() if line.startswith("127.0.0.1 "))
    return row


@pytest.mark.parametrize(("kind", "expected"), [
    ("non_utf8_dns_san", "tls.certificate_unparsable: OpenSSL verified the certificate"),
    ("silent", "tls.timeout: no completed handshake within 1 s"),
    ("http_503", "http.status: HTTP 503 Service Unavailable"),
])
def test_check_prints_the_classified_error_of_a_hostile_edge(
        tmp_path: Path, kind: str, expected: str) -> None:
    with dns_responder() as dns, start_edge(kind) as edge:
        done = _check(tmp_path, dns, edge.port, "--http-path", "/directory")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1), (done.returncode, done.stderr)
    assert f"{EDGE_NAME} A" in done.stdout
    assert expected in _result_column(done.stdout), done.stdout


def test_check_survives_a_certificate_cryptography_cannot_parse(tmp_path: Path) -> None:
    """The realistic one: CN ``*.example`` as a PrintableString, verified by OpenSSL."""
    leaf = unparsable_leaves(shared_pki())["printable_star_cn"]
    with dns_responder() as dns, start_leaf_edge(leaf) as edge:
        done = _check(tmp_path, dns, edge.port)
    assert "Traceback" not in done.stderr, done.stderr
    row = _result_column(done.stdout)
    assert row.endswith("ok") and " yes " in row and "*.example" in row, done.stdout
