"""Where records go that Elasticsearch will never accept, with the reason, instead of vanishing.

A mapping conflict or a field the strict mapping does not know is a fact about the document, not
about the cluster's mood: retrying cannot help, and holding the queue for it would stop every
later record. Such records are appended to ``<dir>/dead-letter-YYYY-MM-DD.ndjson`` (UTC day of
the failure), one JSON object per line with the reason, the target and the document itself, so
a person can fix the mapping or the producer and re-send them. The file is fsynced before the
spool forgets the record, so a dead letter is never lost either.

A dead letter that cannot be written (disk full) raises ``OSError`` after cutting off whatever
part of its line reached the file: the file holds whole lines only, the spool keeps the batch,
and the sender tries it again later (dead letters are at-least-once).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline.documents import iso

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    kind: str
    id: str
    index: str
    op: str
    status: int
    error_type: str
    reason: str
    source: bytes  # the document as sent (serialised JSON, possibly damaged)

    def to_line(self, now: datetime) -> bytes:
        document: Any = None
        try:
            orjson.loads(self.source)
            document = orjson.Fragment(self.source)
        except orjson.JSONDecodeError:
            pass
        record = {
            "@timestamp": iso(now), "kind": self.kind, "_id": self.id, "_index": self.index,
            "op": self.op, "status": self.status,
            "error": {"type": self.error_type, "reason": self.reason},
            "document": document,
        }
        if document is None:
            record["raw"] = self.source.decode("utf-8", "replace")
        return orjson.dumps(record) + b"\n"


class DeadLetterFile:
    """Appends dead letters; ``sync`` makes them durable (called once per bulk batch)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.count = 0
        self._file = None
        self._day = ""
        self._dirty = False
        self._size = 0

    def path_for(self, now: datetime) -> Path:
        return self.directory / f"dead-letter-{now.astimezone(UTC):%Y-%m-%d}.ndjson"

    def add(self, letter: DeadLetter, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        day = f"{now.astimezone(UTC):%Y-%m-%d}"
        if self._file is None or day != self._day:
            self.sync()
            if self._file is not None:
                self._file.close()
            self.directory.mkdir(parents=True, exist_ok=True)
            # Unbuffered: a failed write can be cut off instead of lingering in a buffer.
            self._file = open(self.path_for(now), "ab", buffering=0)  # noqa: SIM115 - the day's
            self._day = day
            self._size = os.fstat(self._file.fileno()).st_size
        self._write_whole(letter.to_line(now))
        self._dirty = True
        self.count += 1
        log.error("dead letter: %s %s → %s rejected with HTTP %d %s: %s (kept in %s)",
                  letter.kind, letter.id, letter.index, letter.status, letter.error_type,
                  letter.reason, self.path_for(now))

    def _write_whole(self, line: bytes) -> None:
        assert self._file is not None
        fd = self._file.fileno()
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._size)
            raise OSError(exc.errno, exc.strerror, self._file.name) from exc
        self._size += len(line)

    def sync(self) -> None:
        if self._file is not None and self._dirty:
            os.fsync(self._file.fileno())
            self._dirty = False

    def close(self) -> None:
        self.sync()
        if self._file is not None:
            self._file.close()
            self._file = None
