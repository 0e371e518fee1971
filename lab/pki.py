"""The lab CA and edge certificates, generated fresh at lab start (never committed).

Three leaf certificates cover the edge behaviours that are about the certificate itself: a good
one for every target hostname, one for the wrong name, and one that expired yesterday. Validity is
in *real* time, because TLS clients check it against the real clock, not the scenario clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"


@dataclass(frozen=True)
class EdgeCerts:
    """Paths of the CA certificate and of each leaf's (cert, key) pair."""

    ca: Path
    leaves: dict[str, tuple[Path, Path]]  # "ok" | "wrong_name" | "expired" -> (cert, key)


def _name(common: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgewatch lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, common),
    ])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _leaf(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, names: list[str],
          not_before: dt.datetime, not_after: dt.datetime) -> tuple[x509.Certificate,
                                                                    ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


DOT_NAME = "dot.lab.test"  # the name every lab resolver's DNS-over-TLS certificate carries
DOT_CERT, DOT_KEY = "dot.pem", "dot.key"


def generate(out_dir: Path, hostnames: list[str], wrong_name: str) -> EdgeCerts:
    """Create the CA and the three leaves in out_dir; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("edgewatch lab CA"))
        .issuer_name(_name("edgewatch lab CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=60))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = out_dir / CA_FILE
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    specs = {
        "ok": (hostnames, now - dt.timedelta(days=1), now + dt.timedelta(days=30)),
        "wrong_name": ([wrong_name], now - dt.timedelta(days=1), now + dt.timedelta(days=30)),
        "expired": (hostnames, now - dt.timedelta(days=30), now - dt.timedelta(days=1)),
    }
    leaves = {}
    for kind, (names, nb, na) in specs.items():
        cert, key = _leaf(ca_key, ca_cert, names, nb, na)
        cert_path = out_dir / f"edge-{kind}.pem"
        key_path = out_dir / f"edge-{kind}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        leaves[kind] = (cert_path, key_path)
    # Resolvers that offer DNS over TLS present this one (SNI/verification name DOT_NAME).
    cert, key = _leaf(ca_key, ca_cert, [DOT_NAME], now - dt.timedelta(days=1),
                      now + dt.timedelta(days=30))
    (out_dir / DOT_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, out_dir / DOT_KEY)
    return EdgeCerts(ca=ca_path, leaves=leaves)


def existing(out_dir: Path) -> EdgeCerts:
    """The certificate set a previous `generate` left in out_dir."""
    leaves = {k: (out_dir / f"edge-{k}.pem", out_dir / f"edge-{k}.key")
              for k in ("ok", "wrong_name", "expired")}
    return EdgeCerts(ca=out_dir / CA_FILE, leaves=leaves)
