"""Documents as ndjson on standard output, for piping into jq or another shipper."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

from pipeline.documents import Record, dumps


class StdoutSink:
    name = "stdout"

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self._stream = stream or sys.stdout.buffer

    async def open(self) -> None:
        return None

    async def write(self, records: Sequence[Record]) -> None:
        for record in records:
            self._stream.write(dumps({"_id": record.id, **record.doc}) + b"\n")

    async def flush(self) -> None:
        self._stream.flush()

    async def close(self) -> None:
        self._stream.flush()
