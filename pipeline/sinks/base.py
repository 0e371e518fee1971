"""The one shape every sink has, so the cycle can feed several at once without knowing them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pipeline.documents import Record


class DeliveryError(Exception):
    """A sink could not take this cycle's records for a reason its one-line message explains
    (disk full, credentials refused): the cycle logs that line, not a traceback, rolls back."""


@runtime_checkable
class Sink(Protocol):
    """Receives the records of each cycle.

    ``write`` is called once per cycle with all its records (check documents first, then the run
    summaries they changed). A sink may buffer; ``flush`` must make everything written so far
    durable or delivered (the cycle calls it at the end of every cycle; ``close`` at shutdown).
    ``close`` flushes and releases resources. A sink never raises for a delivery problem that it
    can keep for later (spooling is its business); it raises ``DeliveryError`` when it cannot
    take the records at all (disk full, credentials refused), and anything else only for
    misconfiguration.

    A sink whose ``write`` already makes records durable may say so with a class attribute
    ``durable_writes = True``; the cycle then skips its per-cycle ``flush`` (shutdown still
    flushes through ``close``), so a slow or unreachable destination never delays probing.
    """

    name: str

    async def open(self) -> None: ...

    async def write(self, records: Sequence[Record]) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...
