"""The embedded default store: dated ndjson files, readable by ``edgewatch report`` and by jq.

Files are named by the UTC day of each document's own timestamp (scenario time in the lab), so
an accelerated 14-day run produces 14 days of files. Each line carries its Elasticsearch ``_id``
so the same files can later be bulk-loaded into a cluster without duplicates. Writes are
appended and fsynced at every flush: a crash loses at most the cycle in flight.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import orjson

from pipeline.documents import Record, dumps
from pipeline.es.names import store_stem


class NdjsonSink:
    name = "ndjson"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._files: dict[str, IO[bytes]] = {}
        self.written = 0

    async def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def _file(self, record: Record) -> IO[bytes]:
        day = record.doc.get("@timestamp", "")[:10] if record.kind != "run" else \
            record.timestamp.strftime("%Y-%m-%d")
        stem = f"{store_stem(record.kind)}-{day}"
        fh = self._files.get(stem)
        if fh is None:
            fh = open(self.directory / f"{stem}.ndjson", "ab")  # noqa: SIM115 - kept open
            if fh.tell() and not _ends_with_newline(fh.name):
                # A process killed mid-line left a torn tail: end it, so the first new line is
                # not glued to it (the torn line stays one corrupt line for the readers).
                fh.write(b"\n")
            self._files[stem] = fh
        return fh

    async def write(self, records: Sequence[Record]) -> None:
        for record in records:
            line = dumps({"_id": record.id, **record.doc})
            self._file(record).write(line + b"\n")
            self.written += 1

    async def flush(self) -> None:
        for fh in self._files.values():
            fh.flush()
            os.fsync(fh.fileno())
        # Close files of days that are over: a long run must not hold hundreds of descriptors.
        if len(self._files) > 8:
            for stem in sorted(self._files)[:-8]:
                self._files.pop(stem).close()

    async def close(self) -> None:
        await self.flush()
        for fh in self._files.values():
            fh.close()
        self._files.clear()


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def read_store(directory: Path, kind: str = "checks"):
    """Yield the documents of one kind from a store folder, oldest file first."""
    for path in sorted(Path(directory).glob(f"{kind}-*.ndjson")):
        with open(path, "rb") as fh:
            for line in fh:
                if line.strip():
                    yield orjson.loads(line)
