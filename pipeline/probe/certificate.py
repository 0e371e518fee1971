"""What a leaf certificate says, described best-effort: a certificate never costs a check.

OpenSSL (which did the handshake) is far more lenient than ``cryptography``'s strict DER parser:
real edges present certificates with a ``*`` in a PrintableString, Latin-1 bytes in a T61String
or a malformed extension, which OpenSSL loads and verifies and ``cryptography`` refuses. So
every field is read on its own, a field that cannot be read is left empty, and the reason is
kept as one note (``parse_error``). The SHA-256 of the DER needs no parser and is always
recorded. Where the verifying handshake already decoded the certificate with OpenSSL (the
``peercert`` dict of Python's ``ssl`` module), that decoding fills the fields ``cryptography``
could not read; what is still missing comes from a lenient walk of the DER (``probe.der``).
"""

from __future__ import annotations

import hashlib
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtensionOID, NameOID

from pipeline.probe.der import der_facts

T = TypeVar("T")
MAX_NOTE = 300  # characters of one parse-error note: enough to name the field and the reason


@dataclass(frozen=True, slots=True)
class Certificate:
    subject_cn: str | None
    issuer_cn: str | None
    alt_names: tuple[str, ...]
    not_before: datetime | None
    not_after: datetime | None
    sha256: str
    parse_error: str | None = None


def _cn(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _alt_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return ()
    return tuple(str(n) for n in ext.value.get_values_for_type(x509.DNSName))


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _openssl_cn(decoded: dict[str, Any], key: str) -> str | None:
    for rdn in decoded.get(key, ()):
        for attr, value in rdn:
            if attr == "commonName":
                return str(value)
    return None


def _openssl_time(decoded: dict[str, Any], key: str) -> datetime | None:
    text = decoded.get(key)
    if not text:
        return None
    try:
        return datetime.fromtimestamp(ssl.cert_time_to_seconds(text), UTC)
    except (ValueError, OverflowError):
        return None


def describe_certificate(der: bytes, decoded: dict[str, Any] | None = None) -> Certificate:
    """Describe ``der``; never raises. ``decoded``: the handshake's ``getpeercert()`` dict."""
    problems: list[str] = []

    def read(what: str, get: Callable[[], T], default: T) -> T:
        try:
            return get()
        except Exception as exc:  # any parser failure is a note, never fatal
            problems.append(f"{what}: {_why(exc)}")
            return default

    subject_cn = issuer_cn = None
    not_before = not_after = None
    alt_names: tuple[str, ...] = ()
    with warnings.catch_warnings():  # "will be an error in a future release": noted below
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        cert = read("certificate", lambda: x509.load_der_x509_certificate(der), None)
    if cert is not None:
        subject_cn = read("subject", lambda: _cn(cert.subject), None)
        issuer_cn = read("issuer", lambda: _cn(cert.issuer), None)
        alt_names = read("extensions", lambda: _alt_names(cert), ())
        not_before = read("notBefore", lambda: cert.not_valid_before_utc, None)
        not_after = read("notAfter", lambda: cert.not_valid_after_utc, None)
    if problems and decoded:
        subject_cn = subject_cn or _openssl_cn(decoded, "subject")
        issuer_cn = issuer_cn or _openssl_cn(decoded, "issuer")
        alt_names = alt_names or tuple(
            str(v) for k, v in decoded.get("subjectAltName", ()) if k == "DNS")
        not_before = not_before or _openssl_time(decoded, "notBefore")
        not_after = not_after or _openssl_time(decoded, "notAfter")
    if problems and (None in (subject_cn, issuer_cn, not_before, not_after) or not alt_names):
        raw = read("der", lambda: der_facts(der), None)
        if raw is not None:
            subject_cn = subject_cn or raw.subject_cn
            issuer_cn = issuer_cn or raw.issuer_cn
            alt_names = alt_names or raw.alt_names
            not_before = not_before or raw.not_before
            not_after = not_after or raw.not_after
    note = "; ".join(problems)[:MAX_NOTE] or None
    return Certificate(subject_cn, issuer_cn, alt_names, not_before, not_after,
                       hashlib.sha256(der).hexdigest(), note)
