"""Hostile HTTP peers behind a good TLS handshake: ``GET http_path`` is classified and bounded.

The probe asks for a path the operator configured, so any final status of 400 or more fails
that check (``http.status``, the status still recorded); 2xx and 3xx succeed. The probe reads
up to the final status line only, so a huge header or a body never costs time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from faults_tls_peers import EDGE_NAME, shared_pki, start_edge

from pipeline.config import Resolver
from pipeline.documents import AddressFacts, CheckContext, check_records
from pipeline.probe.connect import ConnectResult, ConnectSpec, probe_connect, tls_contexts
from pipeline.probe.dns import AnswerAddress, DnsResult

CONNECT, TLS, HTTP = 0.5, 1.0, 1.0
BUDGET = CONNECT + TLS + HTTP


async def _probe(kind: str) -> tuple[ConnectResult, float]:
    with start_edge(kind) as edge:
        started = time.monotonic()
        r = await probe_connect(edge.host, edge.port, EDGE_NAME,
                                ConnectSpec(tls_contexts(shared_pki().ca_file), CONNECT, TLS,
                                            "/directory", HTTP))
        return r, time.monotonic() - started


def _outcome(result: ConnectResult) -> dict:
    dns = DnsResult(Resolver("faults", "127.0.0.1"), EDGE_NAME, "A", rcode="NOERROR",
                    addresses=(AnswerAddress(result.address, 60),))
    ctx = CheckContext("cyc", "chk", "faults", {}, EDGE_NAME, "A", result.port)
    (record,) = check_records(ctx, datetime.now(UTC), dns,
                              AddressFacts({result.address: result}))
    return record.doc


@pytest.mark.parametrize(("kind", "status"), [("http_503", 503), ("http_404", 404)])
async def test_an_error_status_fails_the_check_and_is_recorded(kind: str, status: int) -> None:
    r, _ = await _probe(kind)
    assert r.error_type == "http.status" and r.http_status == status, r
    assert r.error_message.startswith(f"HTTP {status} ")
    assert r.tls_verified and r.http_total_us is not None
    doc = _outcome(r)
    assert doc["event.outcome"] == "failure" and doc["error.type"] == "http.status"
    assert doc["http.response.status_code"] == status


@pytest.mark.parametrize(("kind", "status"), [
    ("ok", 200), ("http_302", 302), ("http_early_hints", 204), ("http_huge_header", 200),
    ("http_endless_body", 200)])
async def test_a_success_or_redirect_status_succeeds(kind: str, status: int) -> None:
    r, elapsed = await _probe(kind)
    assert r.ok and r.http_status == status, r
    assert _outcome(r)["event.outcome"] == "success"
    assert elapsed < HTTP, elapsed  # nothing past the status line is waited for


@pytest.mark.parametrize(("kind", "error_type", "words"), [
    ("http_garbage", "http.error", "not an HTTP status line"),
    ("http_closed_mid_line", "http.error", "closed in the status line"),
    ("http_endless_status_line", "http.error", "longer than"),
    ("http_reset_after_request", "http.error", "reset"),
    ("http_no_answer", "http.timeout", "within"),
    ("http_drip", "http.timeout", "within"),
])
async def test_a_hostile_http_peer_is_classified_within_the_deadline(
        kind: str, error_type: str, words: str) -> None:
    r, elapsed = await _probe(kind)
    assert r.error_type == error_type and words in r.error_message, r
    assert r.tls_verified and r.http_status is None
    assert _outcome(r)["event.outcome"] == "failure"
    assert elapsed < BUDGET + 0.5, elapsed
    if error_type == "http.timeout":
        assert elapsed < HTTP + 0.5, elapsed  # the HTTP timeout, then an abort: no close wait
