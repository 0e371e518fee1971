"""Reading the ndjson store line by line, surviving what a disk and a crash leave behind.

A store written for months meets a power loss mid-line, a disk that returns garbage, a hand
edit, two processes appending the same document. One bad line must never cost a report: every
line is parsed and checked here (JSON object, ``_id``, the dataset of its file, and the type of
every field a reader or the cluster relies on), bad lines are skipped and counted per file with
their line numbers, and ``strict`` turns the first one into a ``StoreLineError`` instead.

``Distinct`` drops repeated ``_id``s the way Elasticsearch does (the first one stored wins). A
check document's file is named by the UTC day of its own ``@timestamp``, so copies of one
document sit in the same file (or, for a cycle straddling midnight, the next one): remembering the
ids of the current and the previous file is exact and keeps memory to two days of ids.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline import schema1
from pipeline.es.names import CHECK_DATASET, EVENT_DATASET, RUN_DATASET

DATASETS = {"checks": CHECK_DATASET, "runs": RUN_DATASET, "events": EVENT_DATASET}
FIRST_SHOWN = 3  # bad lines named in a file's warning


class StoreLineError(ValueError):
    """A bad line met in strict mode; the message names the file, the line and the reason."""


def parse_ts(value: str) -> datetime:
    """An RFC 3339 timestamp as stored (``Z`` or an offset; naive means UTC, as in ES)."""
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def field_value(doc: dict[str, Any], key: str) -> Any:
    """A field of a flat document (``"a.b"`` keys); nested objects are accepted too."""
    if key in doc:
        return doc[key]
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# -- field checks: each returns None when the value is acceptable, else what is wrong ----------


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) and v else "is not a non-empty string"


def _int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) else "is not an integer"


def _number(v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and v == v  # NaN != NaN
    return None if ok else "is not a number"


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "is not true/false"


def _date(v: Any) -> str | None:
    if not isinstance(v, str):
        return "is not a date"
    try:
        parse_ts(v)
    except ValueError:
        return f"is not a date: {v[:40]!r}"
    return None


_GOOD_IPS: set[str] = set()  # addresses repeat in every cycle: parse each one once


def _ip(v: Any) -> str | None:
    if v in _GOOD_IPS:
        return None
    if not isinstance(v, str):
        return "is not an IP address"
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return f"is not an IP address: {v[:40]!r}"
    if len(_GOOD_IPS) > 100_000:
        _GOOD_IPS.clear()
    _GOOD_IPS.add(v)
    return None


Check = Callable[[Any], "str | None"]

# (field, check, required): the fields the report, the allowlist and the cluster's strict
# mapping depend on. Anything else is passed through untouched.
_COMMON: list[tuple[str, Check, bool]] = [
    ("_id", _str, True),
    ("@timestamp", _date, True),
    ("edgewatch.resolver.name", _str, True),
    ("dns.question.name", _str, False),
    ("observer.name", _str, False),
    ("destination.ip", _ip, False),
    ("edgewatch.resolver.ip", _ip, False),
    ("edgewatch.destination.prefix", _str, False),
    ("edgewatch.destination.prefix24", _str, False),
    ("destination.as.number", _int, False),
    ("destination.domain", _str, False),
]
FIELDS: dict[str, list[tuple[str, Check, bool]]] = {
    "checks": [
        *_COMMON,
        ("event.outcome", _str, False),
        ("error.type", _str, False),
        ("edgewatch.dns.answer_count", _int, False),
        ("destination.port", _int, False),
        ("tcp.rtt.connect.us", _int, False),
        ("tls.rtt.handshake.us", _int, False),
        ("edgewatch.run.id", _str, False),
        ("edgewatch.run.seq", _int, False),
        ("edgewatch.run.start", _date, False),
    ],
    "runs": [
        *_COMMON,
        ("edgewatch.run.id", _str, True),
        ("edgewatch.run.version", _int, True),
        ("edgewatch.run.start", _date, True),
        ("edgewatch.run.last_seen", _date, True),
        ("edgewatch.run.end", _date, False),
        ("edgewatch.run.open", _bool, True),
        ("edgewatch.run.duration.s", _number, True),
        ("edgewatch.run.observed.s", _number, True),
        ("destination.ip", _ip, True),
    ],
    "events": [
        *_COMMON,
        ("event.action", _str, True),
        ("edgewatch.run.id", _str, True),
        ("destination.ip", _ip, True),
    ],
}


_CHECKS = {kind: {name: check for name, check, _ in fields} for kind, fields in FIELDS.items()}
_REQUIRED = {kind: [name for name, _, required in fields if required]
             for kind, fields in FIELDS.items()}


def problem(doc: Any, kind: str) -> str | None:
    """Why a parsed line is not a usable document of ``kind`` (``checks``/``runs``), or None."""
    if not isinstance(doc, dict):
        return f"not a JSON object but {type(doc).__name__}"
    dataset = doc.get("event.dataset")
    if dataset is None:  # written with nested objects (or without a dataset): the slow path
        return _problem_nested(doc, kind)
    if dataset != DATASETS[kind]:
        return f"event.dataset is {dataset!r}, not {DATASETS[kind]!r}"
    checks = _CHECKS[kind]
    for name in _REQUIRED[kind]:
        if doc.get(name) is None:
            return f"{name} is missing"
    for name in checks.keys() & doc.keys():  # only the fields present (C-speed intersection)
        value = doc[name]
        check = checks[name]
        # the common cases inline: this runs for every line of a store of millions
        if value is None or (check is _str and type(value) is str and value) or (
                check is _int and type(value) is int):
            continue
        wrong = check(value)
        if wrong:
            return f"{name} {wrong}"
    return None


def _problem_nested(doc: dict[str, Any], kind: str) -> str | None:
    dataset = field_value(doc, "event.dataset")
    if dataset != DATASETS[kind]:
        return f"event.dataset is {dataset!r}, not {DATASETS[kind]!r}"
    for name, check, required in FIELDS[kind]:
        value = field_value(doc, name)
        if value is None:
            if required:
                return f"{name} is missing"
            continue
        wrong = check(value)
        if wrong:
            return f"{name} {wrong}"
    return None


@dataclass
class FileIssues:
    """The bad lines of one file, as found by its last complete reading."""

    path: Path
    lines: int = 0
    skipped: int = 0
    first: list[tuple[int, str]] = field(default_factory=list)

    def warning(self) -> str:
        shown = "; ".join(f"line {n}: {why}" for n, why in self.first)
        more = ", …" if self.skipped > len(self.first) else ""
        return (f"{self.path}: skipped {self.skipped:,} of {self.lines:,} lines "
                f"({shown}{more})")


class StoreLines:
    """Valid documents of store files, with the bad lines of each file remembered once.

    A file read twice (the report reads the first and last day for its window, then all of
    them) is counted once: each complete reading replaces that file's record.
    """

    def __init__(self, strict: bool = False,
                 on_line: Callable[[Path, int], None] | None = None) -> None:
        self.strict = strict
        self.on_line = on_line
        self.issues: dict[Path, FileIssues] = {}
        self.upgraded: dict[Path, int] = {}  # schema-1 lines read as schema 2, per file

    def read(self, path: Path, kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(line number, document)`` for every valid line of one file."""
        found = FileIssues(path)
        loads, on_line, n, upgraded = orjson.loads, self.on_line, 0, 0
        with path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if on_line is not None and n % 200_000 == 0:
                    on_line(path, n)
                if not line.strip():
                    continue
                try:
                    doc = loads(line)
                except orjson.JSONDecodeError:
                    why = ("truncated last line (no newline at the end)"
                           if not line.endswith(b"\n") else "invalid JSON")
                else:
                    if type(doc) is dict and doc.get("edgewatch.schema") == 1:
                        doc = schema1.upgrade(doc)
                        upgraded += 1
                    why = problem(doc, kind)
                    if why is None:
                        yield n, doc
                        continue
                if self.strict:
                    raise StoreLineError(f"{path} line {n}: {why}")
                found.skipped += 1
                if len(found.first) < FIRST_SHOWN:
                    found.first.append((n, why))
        found.lines = n
        if upgraded:
            self.upgraded[path] = upgraded
        else:
            self.upgraded.pop(path, None)
        if found.skipped:
            self.issues[path] = found
        else:
            self.issues.pop(path, None)

    @property
    def skipped(self) -> int:
        return sum(i.skipped for i in self.issues.values())

    def warnings(self) -> list[str]:
        """One line per file with skipped lines, in file order; one for schema-1 lines."""
        out = [self.issues[p].warning() for p in sorted(self.issues)]
        if self.upgraded:
            first = min(self.upgraded)
            out.append(f"{first.parent}: {sum(self.upgraded.values()):,} schema-1 lines in "
                       f"{len(self.upgraded)} file(s) were read as schema 2; "
                       f"`edgewatch migrate-store {first.parent}` rewrites them")
        return out


class Distinct:
    """Drops documents whose ``_id`` was already seen in this file or the previous one."""

    def __init__(self) -> None:
        self._previous: set[str] = set()
        self._current: set[str] = set()
        self._path: Path | None = None
        self.duplicates = 0

    def start(self, path: Path) -> tuple[set[str], set[str]]:
        """Begin a file: (ids of this file, ids of the previous one) for a fast inline test."""
        if path != self._path:
            self._previous, self._current, self._path = self._current, set(), path
        return self._current, self._previous

    def first_time(self, path: Path, doc_id: str) -> bool:
        current, previous = self.start(path)
        if doc_id in current or doc_id in previous:
            self.duplicates += 1
            return False
        current.add(doc_id)
        return True
