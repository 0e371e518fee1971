"""Certificates OpenSSL accepts but ``cryptography`` cannot parse cost nothing.

Each leaf is crafted DER (faults_tls_peers.TestPKI), signed by our own CA and loaded by an
OpenSSL server on loopback. Probed with the right name (the verifying path) and with a wrong one
(verification fails, the non-verifying second handshake describes the certificate): the check
completes as the handshake said, the SHA-256 of the DER is always recorded, and what could not
be parsed is one note, ``edgewatch.certificate.parse_error`` in the document.
"""

from __future__ import annotations

import hashlib
import json
import random
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from faults_tls_peers import EDGE_NAME, shared_pki, start_edge, start_leaf_edge, unparsable_leaves

from pipeline.config import Resolver
from pipeline.documents import AddressFacts, CheckContext, check_records
from pipeline.probe.certificate import describe_certificate
from pipeline.probe.connect import ConnectResult, ConnectSpec, probe_connect, tls_contexts
from pipeline.probe.der import der_facts
from pipeline.probe.dns import AnswerAddress, DnsResult

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings" / "component_templates"
LEAVES = unparsable_leaves(shared_pki())
# OpenSSL 3 loads a UTCTime without seconds but its verification rejects the field
VERIFY_REJECTS = {"utctime_no_seconds": "notBefore"}
# recovered by OpenSSL's own decoding (verifying path) or the lenient DER walk (both paths)
SUBJECT_CN = {"printable_star_cn": "*.example", "t61_latin1_cn": "café.example"}


def _assert_described(kind: str, cert) -> None:
    assert cert.subject_cn == SUBJECT_CN.get(kind, EDGE_NAME), cert
    assert cert.issuer_cn == "edgewatch faults CA" and EDGE_NAME in cert.alt_names, cert
    assert cert.not_before is not None and cert.not_after is not None, cert


async def _probe(port: int, name: str) -> ConnectResult:
    return await probe_connect("127.0.0.1", port, name,
                               ConnectSpec(tls_contexts(shared_pki().ca_file), 1.0, 1.0, "/", 1.0))


def _document(result: ConnectResult) -> dict:
    resolver = Resolver("faults", "127.0.0.1")
    dns = DnsResult(resolver, EDGE_NAME, "A", rcode="NOERROR",
                    addresses=(AnswerAddress(result.address, 60),))
    ctx = CheckContext("cyc", "chk", "faults", {}, EDGE_NAME, "A", result.port)
    (record,) = check_records(ctx, datetime.now(UTC), dns,
                              AddressFacts({result.address: result}))
    return record.doc


def _mapped(path: str) -> bool:
    """Declared in the check data stream's mappings (base + check component templates)."""
    for name in ("edgewatch-base@mappings.json", "edgewatch-check@mappings.json"):
        props = json.loads((MAPPINGS / name).read_text())["template"]["mappings"]["properties"]
        *parents, leaf = path.split(".")
        for p in parents:
            props = props.get(p, {}).get("properties", {})
        if leaf in props:
            return True
    return False


@pytest.mark.parametrize("kind", sorted(LEAVES))
async def test_verifying_path_completes_as_the_handshake_said(kind: str) -> None:
    leaf = LEAVES[kind]
    with start_leaf_edge(leaf) as edge:
        r = await _probe(edge.port, EDGE_NAME)
    cert = r.certificate
    assert cert is not None and cert.sha256 == hashlib.sha256(leaf.der).hexdigest(), r
    assert cert.parse_error, cert
    if kind in VERIFY_REJECTS:
        assert r.error_type == "tls.verify" and VERIFY_REJECTS[kind] in r.error_message, r
        assert r.tls_established and not r.tls_verified
    else:
        assert r.ok and r.tls_verified and r.http_status == 200, r
    _assert_described(kind, cert)
    doc = _document(r)
    assert doc["event.outcome"] == ("failure" if kind in VERIFY_REJECTS else "success")
    assert doc["tls.server.hash.sha256"] == cert.sha256.upper()
    assert doc["edgewatch.certificate.parse_error"] == cert.parse_error
    assert [k for k in doc if not _mapped(k)] == []


@pytest.mark.parametrize("kind", sorted(LEAVES))
async def test_non_verifying_path_describes_what_it_can(kind: str) -> None:
    leaf = LEAVES[kind]
    with start_leaf_edge(leaf) as edge:
        r = await _probe(edge.port, "wrong.faults.test")
    assert r.error_type == "tls.verify" and r.tls_established and not r.tls_verified, r
    assert "certificate not recorded" not in r.error_message
    assert r.tls_version and r.tls_cipher
    assert r.certificate is not None and r.certificate.parse_error
    assert r.certificate.sha256 == hashlib.sha256(leaf.der).hexdigest()
    _assert_described(kind, r.certificate)
    assert _document(r)["edgewatch.certificate.parse_error"] == r.certificate.parse_error


async def test_a_non_utf8_dns_name_is_certificate_unparsable_with_its_facts() -> None:
    """Python's ssl module cannot decode (getpeercert) what OpenSSL verified: UnicodeDecodeError
    on byte 0xE9 in a dNSName: classified, and every fact of that same handshake (and the HTTP
    answer) still recorded."""
    with start_edge("non_utf8_dns_san") as edge:
        r = await _probe(edge.port, EDGE_NAME)
        accepted = edge.accepted
    assert r.error_type == "tls.certificate_unparsable", r
    assert "UnicodeDecodeError" in r.error_message
    assert r.tls_established and r.tls_verified and r.tls_version and r.http_status == 200
    assert r.certificate is not None and len(r.certificate.sha256) == 64
    assert r.certificate.subject_cn == EDGE_NAME and r.certificate.parse_error
    assert r.certificate.alt_names == ("caf\\xe9.faults.test", EDGE_NAME)  # lenient DER walk
    assert accepted == 1  # no second handshake was needed
    assert _document(r)["event.outcome"] == "failure"


async def test_with_a_plain_verifying_context_the_same_handshake_records_it() -> None:
    """A caller's own SSLContext (not from tls_contexts): classified the same way, and the
    certificate described from that very handshake (asyncio's SSL layer used to fail the
    connection here and a second, non-verifying handshake was needed)."""
    plain = ssl.create_default_context(cafile=str(shared_pki().ca_file))
    lenient = tls_contexts(None)[1]
    with start_edge("non_utf8_dns_san") as edge:
        r = await probe_connect("127.0.0.1", edge.port, EDGE_NAME,
                                ConnectSpec((plain, lenient), 1.0, 1.0))
        accepted = edge.accepted
    assert r.error_type == "tls.certificate_unparsable" and r.tls_verified, r
    assert r.certificate is not None and r.certificate.subject_cn == EDGE_NAME
    assert accepted == 1


def test_describe_certificate_never_raises() -> None:
    for der in (b"", b"not a certificate", b"\x30\x82\xff\xff" + b"\x00" * 10):
        cert = describe_certificate(der)
        assert cert.sha256 == hashlib.sha256(der).hexdigest()
        assert cert.parse_error and cert.parse_error.startswith("certificate: ")
        assert cert.subject_cn is None and cert.not_before is None


def test_the_lenient_der_walk_reads_every_crafted_leaf_and_refuses_junk() -> None:
    for kind, leaf in LEAVES.items():
        facts = der_facts(leaf.der)
        assert facts.subject_cn == SUBJECT_CN.get(kind, EDGE_NAME), (kind, facts)
        assert facts.not_before is not None and EDGE_NAME in facts.alt_names, (kind, facts)
    for junk in (b"", b"\x30", b"\x30\x05\x30\x03\x02\x01", LEAVES["t61_latin1_cn"].der[:-40]):
        with pytest.raises(ValueError):
            der_facts(junk)


def test_describe_certificate_survives_mutated_certificates() -> None:
    """A seeded mutation fuzz (flipped bytes, truncations, splices) of every crafted leaf:
    the description never raises and always carries the fingerprint of what it was given."""
    rng = random.Random(9)
    seeds = [leaf.der for leaf in LEAVES.values()]
    noted = 0
    for _ in range(3000):
        der = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if op < 0.6:
                der[rng.randrange(len(der))] = rng.randrange(256)
            elif op < 0.8:
                del der[rng.randrange(len(der)):]
            else:
                at = rng.randrange(len(der))
                der[at:at] = rng.randbytes(rng.randint(1, 8))
            if not der:
                break
        cert = describe_certificate(bytes(der))
        assert cert.sha256 == hashlib.sha256(der).hexdigest()
        noted += cert.parse_error is not None
    assert noted > 2000  # the fuzz does reach the failure paths
