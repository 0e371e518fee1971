"""A last-resort reader of the few certificate fields edgewatch records, straight from the DER.

``cryptography`` refuses a whole certificate for one field it finds invalid (a ``*`` in a
PrintableString, a UTCTime without seconds); OpenSSL's own decoding is only available from a
verifying handshake. This walks the TLV structure far enough to find the subject and issuer CN,
the validity and the SAN dNSNames, decoding strings leniently (bytes it cannot decode are kept
as ``\\xNN``). It validates nothing — the handshake already did whatever validation applies —
and raises ``ValueError`` on a structure it cannot walk; the caller treats that as a note.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

SEQUENCE, SET, OID, OCTETS, BOOLEAN = 0x30, 0x31, 0x06, 0x04, 0x01
CN_OID = b"\x55\x04\x03"  # 2.5.4.3
SAN_OID = b"\x55\x1d\x11"  # 2.5.29.17
DNS_NAME = 0x82  # [2] IMPLICIT IA5String
EXTENSIONS = 0xA3  # [3] EXPLICIT
UTF8, T61, BMP, UNIVERSAL = 0x0C, 0x14, 0x1E, 0x1C
UTCTIME, GENTIME = 0x17, 0x18


@dataclass(frozen=True, slots=True)
class DerFacts:
    subject_cn: str | None
    issuer_cn: str | None
    alt_names: tuple[str, ...]
    not_before: datetime | None
    not_after: datetime | None


def tlvs(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The (tag, content) items of a DER byte string, in order."""
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise ValueError("truncated TLV header")
        tag, n = data[i], data[i + 1]
        i += 2
        if tag & 0x1F == 0x1F:
            raise ValueError("multi-byte tags are not used in certificates")
        if n & 0x80:
            k = n & 0x7F
            if not 1 <= k <= 4 or i + k > len(data):
                raise ValueError("bad DER length")
            n = int.from_bytes(data[i:i + k], "big")
            i += k
        if i + n > len(data):
            raise ValueError("truncated DER value")
        yield tag, data[i:i + n]
        i += n


def _one(data: bytes, tag: int) -> bytes:
    for t, content in tlvs(data):
        if t == tag:
            return content
        raise ValueError(f"expected tag {tag:#x}, found {t:#x}")
    raise ValueError(f"expected tag {tag:#x}, found nothing")


def _text(tag: int, raw: bytes) -> str:
    if tag == BMP:
        return raw.decode("utf-16-be", "backslashreplace")
    if tag == UNIVERSAL:
        return raw.decode("utf-32-be", "backslashreplace")
    if tag == UTF8:
        return raw.decode("utf-8", "backslashreplace")
    if tag == T61:
        return raw.decode("latin-1")  # as OpenSSL reads it
    return raw.decode("ascii", "backslashreplace")  # Printable, IA5, T61, …: bytes as seen


def _cn(name: bytes) -> str | None:
    for tag, rdn in tlvs(name):
        if tag != SET:
            continue
        for tag2, attr in tlvs(rdn):
            items = list(tlvs(attr)) if tag2 == SEQUENCE else []
            if len(items) == 2 and items[0] == (OID, CN_OID):
                return _text(*items[1])
    return None


def _time(tag: int, raw: bytes) -> datetime | None:
    text = raw.decode("ascii", "replace").rstrip("Z")
    formats = ("%y%m%d%H%M%S", "%y%m%d%H%M") if tag == UTCTIME else ("%Y%m%d%H%M%S",
                                                                      "%Y%m%d%H%M")
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _dns_names(extensions: bytes) -> tuple[str, ...]:
    for _tag, ext in tlvs(_one(extensions, SEQUENCE)):
        items = list(tlvs(ext))
        if items and items[0] == (OID, SAN_OID):
            names = _one(items[-1][1], SEQUENCE)
            return tuple(_text(0, raw) for tag, raw in tlvs(names) if tag == DNS_NAME)
    return ()


def der_facts(der: bytes) -> DerFacts:
    """Subject/issuer CN, validity and SAN dNSNames of a DER certificate, leniently."""
    tbs = _one(_one(der, SEQUENCE), SEQUENCE)
    items = list(tlvs(tbs))
    if items and items[0][0] == 0xA0:  # [0] version
        items = items[1:]
    if len(items) < 6:
        raise ValueError("TBSCertificate too short")
    _serial, _alg, issuer, validity, subject, _spki, *rest = items
    times = [_time(t, raw) for t, raw in tlvs(validity[1])]
    alt: tuple[str, ...] = ()
    for tag, content in rest:
        if tag == EXTENSIONS:
            alt = _dns_names(content)
    return DerFacts(
        subject_cn=_cn(subject[1]),
        issuer_cn=_cn(issuer[1]),
        alt_names=alt,
        not_before=times[0] if times else None,
        not_after=times[1] if len(times) > 1 else None,
    )
