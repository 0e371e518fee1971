"""Every stable id of the pipeline, spelled once.

Ids are SHA-1 digests (not for security: for stable, collision-free names) of their parts, each
part followed by the unit separator ``\\x1f``. They must stay byte-identical across releases:
ndjson stores, Elasticsearch ``_id``s and the runs index refer to them, so a changed id would
duplicate a document or split a run (tests/pipeline/test_cycle_ids.py pins known values).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime


def digest(*parts: object) -> str:
    """The full hex digest of ``parts``, each one as ``str(part)`` followed by ``\\x1f``."""
    h = hashlib.sha1(usedforsecurity=False)
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def stamp(ts: datetime) -> str:
    """Millisecond ISO-8601 in UTC with a Z: the one timestamp spelling of documents and ids."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_id(observer: str, name: str, rtype: str, resolver: str, address: str,
           start: datetime) -> str:
    """One run: its group, its address and its first sighting (``+00:00``, not ``Z``: as ever)."""
    first = start.astimezone(UTC).isoformat(timespec="milliseconds")
    return digest(observer, name, rtype, resolver, address, first)[:24]


def cycle_id(observer: str, started: datetime) -> str:
    """One cycle of one observer. Its spelling predates ``digest`` (a ``|`` between the two
    parts, no separator after them) and is kept so existing documents keep their cycle id."""
    text = f"{observer}|{stamp(started)}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:20]


def check_id(observer: str, cycle_start: datetime, target: str, rtype: str) -> str:
    """One id per cycle × target × record type, shared by all its documents."""
    return digest("cycle", observer, stamp(cycle_start), target, rtype)[:20]


def check_doc_id(check: str, resolver: str, address: str | None) -> str:
    """Stable ``_id`` of one check document: one per check, resolver and answer address."""
    return digest("check", check, resolver, address or "-")[:32]


def event_id(action: str, run: str) -> str:
    """Stable ``_id`` of an event about one run (``allowlist-miss``): at most one per run and
    action, however often a replay or a restart builds it again."""
    return digest("event", action, run)[:32]


def answer_set_hash(addresses: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    """The same set of addresses in any order: one hash."""
    return digest(*sorted(addresses))[:16]
