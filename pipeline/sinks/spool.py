"""A durable on-disk queue of records waiting for Elasticsearch: append-only segments + a cursor.

The Elasticsearch sink writes every record here *before* it tries to send it (a write-ahead log),
so what ``write`` acknowledged survives a crash at any instant, a cluster outage of any length
(up to the size bound) and a restart. Records are delivered in the order they were appended.

On disk, in one directory owned by one process (an ``flock`` on ``spool.lock``):

* ``<20-digit number>.seg`` — segment files, appended to and never rewritten. One line per record:
  ``crc32 TAB kind TAB version TAB id TAB json NL``; the CRC covers everything after the first
  tab, so a torn or corrupted line is recognised. orjson never emits a raw tab or newline, so
  the document is the rest of the line.
* ``cursor.json`` — the position (segment, byte offset) up to which records are delivered,
  replaced atomically (write, fsync, rename, fsync of the directory).

Appends are fsynced once per call (a batch boundary) before they are acknowledged. A process
killed mid-append leaves at most one incomplete final line, cut off when the spool is opened.
A crash between delivery and the cursor update replays the last batch (the last two when the
sender had moved the cursor in memory only, ``commit(durable=False)``): harmless, because every
record carries its deterministic ``_id`` (and run summaries their version), so Elasticsearch
answers "already there" instead of storing a second copy. The files' formats (segment lines, the
cursor, the lock) are in ``spool_files``; this module decides what to append, read and commit.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from pipeline.sinks.spool_files import (
    CURSOR_FILE,
    LOCK_FILE,
    SEGMENT_SUFFIX,
    Batch,
    Position,
    SpoolEntry,
    SpoolError,
    SpoolLocked,
    SpoolWriteError,
    fsync_dir,
    human_bytes,
    read_cursor,
    repair_tail,
    segment_numbers,
    segment_path,
    take_lock,
    write_cursor,
)

log = logging.getLogger(__name__)

# The on-disk formats live in spool_files; these names stay importable from here.
__all__ = ["CURSOR_FILE", "DEFAULT_RESERVE_BYTES", "DEFAULT_SEGMENT_BYTES", "LOCK_FILE",
           "SEGMENT_SUFFIX", "Batch", "Position", "Spool", "SpoolEntry", "SpoolError",
           "SpoolLocked", "SpoolWriteError", "human_bytes", "opened"]

DEFAULT_SEGMENT_BYTES = 16 * 2**20
# A drained tail segment at least this big is replaced by a fresh one, so delivered data does
# not linger on disk until the next size-based rotation.
DRAINED_ROTATE_BYTES = 2**20


# What the spool keeps in memory of its own most recent appends (line bytes), so that the sender
# reads them without reading the file back: in steady state every batch is read moments after it
# was appended, and re-reading and CRC-checking it cost about a quarter of the sink's client CPU.
# Two bulk batches (the one on the wire and the one read ahead) fit in the default with room to
# spare; anything older (a backlog after an outage) is read from the file as before.
RECENT_MAX_BYTES = 8 * 2**20


# Free space an append always leaves on the spool's file system, so that a full disk still lets
# the sender write the (tiny) cursor file and delete delivered segments: without it a disk filled
# to the last byte could neither take new records nor make room by delivering old ones.
DEFAULT_RESERVE_BYTES = 64 * 1024


class Spool:
    """Append-only segments with a delivered-up-to cursor; single writer, single reader.

    ``max_bytes`` bounds what is pending on disk. When an append would exceed it the newest
    records are refused (``append`` returns how many it took) and an error is logged every time:
    the caller counts and reports them. A warning is logged once the spool is half full.
    """

    def __init__(self, directory: Path, max_bytes: int = 1 << 30,
                 segment_bytes: int = DEFAULT_SEGMENT_BYTES,
                 reserve_bytes: int = DEFAULT_RESERVE_BYTES,
                 recent_max_bytes: int = RECENT_MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.recent_max_bytes = recent_max_bytes
        # (segment, offset) of a line appended by this process → (line size, its entry); only
        # lines that are whole and fsynced in the file, so the file says the same. The keys,
        # oldest first, also in a deque: dropping the oldest of a dict through
        # ``next(iter(...))`` walks over every slot deleted before it (quadratic).
        self._recent: dict[tuple[int, int], tuple[int, SpoolEntry]] = {}
        self._recent_order: deque[tuple[int, int]] = deque()
        self._recent_bytes = 0
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.reserve_bytes = reserve_bytes
        self._lock_fd: int | None = None
        self._cursor = Position(0, 0)
        self._durable_cursor = self._cursor  # what the cursor file says (``sync_cursor``)
        self._segments: list[int] = []
        self._sizes: dict[int, int] = {}
        self._writer = None
        self._reader = None
        self._reader_segment = -1
        self.pending_entries = 0
        self.refused_total = 0
        self._warned_half = False

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = take_lock(self.directory)
        self._cursor = read_cursor(self.directory)
        self._segments = segment_numbers(self.directory)
        for number in [n for n in self._segments if n < self._cursor.segment]:
            # Delivered; a crash came between the cursor update and their removal.
            self._path(number).unlink(missing_ok=True)
        self._segments = [n for n in self._segments if n >= self._cursor.segment]
        if self._segments:
            repair_tail(self._path(self._segments[-1]))
            self._sizes = {n: self._path(n).stat().st_size for n in self._segments}
            if self._cursor.segment < self._segments[0]:
                self._cursor = Position(self._segments[0], 0)
            size = self._sizes[self._cursor.segment]
            if self._cursor.offset > size:
                # Only after a power loss: the segment lost a tail the cursor had passed.
                log.warning("spool cursor %s lies beyond the end of its segment (%d bytes); "
                            "moved back to it", self._cursor, size)
                self._cursor = Position(self._cursor.segment, size)
            self._start_segment(self._segments[-1])
        else:
            self._cursor = Position(max(self._cursor.segment, 1), 0)
            self._start_segment(self._cursor.segment)
        self._durable_cursor = self._cursor
        self.pending_entries = self._count_pending()
        if self.pending_entries:
            log.warning("spool %s holds %d undelivered record(s) (%s) from an earlier run; "
                        "they are sent first", self.directory, self.pending_entries,
                        human_bytes(self.pending_bytes))

    def close(self) -> None:
        if self._lock_fd is not None:  # a cursor moved in memory only is written now
            with contextlib.suppress(OSError):
                self.sync_cursor()
        for f in (self._writer, self._reader):
            if f is not None:
                f.close()
        self._writer = self._reader = None
        self._reader_segment = -1
        self._forget_recent(None)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # -- state -----------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        # Segments the cursor has passed may still be there until ``sync_cursor``.
        first = self._cursor.segment
        total = sum(size for n, size in self._sizes.items() if n >= first)
        return total - self._cursor.offset if self._sizes else 0

    @property
    def cursor(self) -> Position:
        return self._cursor

    def is_empty(self) -> bool:
        return self.pending_bytes == 0

    # -- writing ---------------------------------------------------------------------------

    def append(self, entries: Iterable[SpoolEntry]) -> int:
        """Append and fsync; return how many entries were taken (the rest did not fit)."""
        entries = list(entries)
        lines = [e.encode() for e in entries]
        if not lines:
            return 0
        room = self.max_bytes - self.pending_bytes
        taken: list[bytes] = []
        for line in lines:
            if len(line) > room:
                break
            taken.append(line)
            room -= len(line)
        refused = len(lines) - len(taken)
        if refused:
            self.refused_total += refused
            log.error("SPOOL FULL: %s holds %s (limit %s); %d record(s) refused now, "
                      "%d in total — Elasticsearch has not accepted records for a long time",
                      self.directory, human_bytes(self.pending_bytes),
                      human_bytes(self.max_bytes), refused, self.refused_total)
        if not taken:
            return 0
        data = b"".join(taken)
        self._check_free_space(len(data))
        current = self._segments[-1]
        if self._sizes[current] >= self.segment_bytes:
            try:
                self._start_segment(current + 1)
            except OSError as exc:
                raise self._write_error(exc, len(taken)) from exc
            current = current + 1
        self._write_durably(current, data, len(taken))
        self._remember(current, self._sizes[current], taken, entries)
        self._sizes[current] += len(data)
        self.pending_entries += len(taken)
        if not self._warned_half and self.pending_bytes > self.max_bytes // 2:
            self._warned_half = True
            log.warning("spool %s is more than half full (%s of %s): records are not "
                        "reaching Elasticsearch", self.directory, human_bytes(self.pending_bytes),
                        human_bytes(self.max_bytes))
        return len(taken)

    def _check_free_space(self, size: int) -> None:
        """Refuse an append that would leave less than ``reserve_bytes`` free on the disk."""
        if not self.reserve_bytes:
            return
        try:
            st = os.statvfs(self.directory)
        except OSError:
            return  # cannot tell: the write itself will say
        free = st.f_bavail * st.f_frsize
        if free - size < self.reserve_bytes:
            raise SpoolWriteError(
                f"spool {self.directory}: disk full ({human_bytes(free)} free, "
                f"{human_bytes(size)} to write, {human_bytes(self.reserve_bytes)} kept in "
                "reserve); records not acknowledged")

    def _low_on_space(self) -> bool:
        """Little room left: give delivered bytes back now rather than at the next rotation."""
        try:
            st = os.statvfs(self.directory)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize < 4 * max(self.reserve_bytes, DEFAULT_RESERVE_BYTES)

    def _write_durably(self, segment: int, data: bytes, count: int) -> None:
        """Write and fsync ``data`` at the end of the tail segment, or leave it as it was."""
        assert self._writer is not None
        fd = self._writer.fileno()
        size = self._sizes[segment]
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            # Cut off whatever part reached the file: the spool must hold whole, acknowledged
            # lines only (open() would also cut a torn tail, but a later append must not land
            # behind one).
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
                os.fsync(fd)
            raise self._write_error(exc, count) from exc

    def _remember(self, segment: int, offset: int, lines: list[bytes],
                  entries: list[SpoolEntry]) -> None:
        """Keep the lines just made durable at ``offset`` for ``read``, within the bound."""
        if self.recent_max_bytes <= 0:
            return
        recent, order = self._recent, self._recent_order
        for line, entry in zip(lines, entries, strict=False):  # lines: the taken prefix
            key = (segment, offset)
            recent[key] = (len(line), entry)
            order.append(key)
            offset += len(line)
            self._recent_bytes += len(line)
        while self._recent_bytes > self.recent_max_bytes and order:
            self._recent_bytes -= recent.pop(order.popleft())[0]

    def _forget_recent(self, before: Position | None) -> None:
        """Drop the remembered lines before ``before`` (delivered), or all of them."""
        recent, order = self._recent, self._recent_order
        if before is None:
            recent.clear()
            order.clear()
            self._recent_bytes = 0
            return
        limit = (before.segment, before.offset)
        while order and order[0] < limit:
            self._recent_bytes -= recent.pop(order.popleft())[0]

    def _write_error(self, exc: OSError, count: int) -> SpoolWriteError:
        why = exc.strerror or str(exc)
        if exc.errno == errno.ENOSPC:
            why = "disk full"
        return SpoolWriteError(f"spool {self.directory}: cannot store {count} record(s): {why}; "
                               "records not acknowledged")

    def _start_segment(self, number: int) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        path = self._path(number)
        # Unbuffered: append writes and fsyncs itself, and can cut a partial write off.
        self._writer = open(path, "ab", buffering=0)  # noqa: SIM115 - kept while it is the tail
        if number not in self._sizes:
            self._segments.append(number)
            self._sizes[number] = path.stat().st_size
            fsync_dir(self.directory)

    # -- reading ---------------------------------------------------------------------------

    def read(self, max_entries: int, max_bytes: int, start: Position | None = None) -> Batch:
        """Up to ``max_entries`` / ``max_bytes`` (at least one entry) from the cursor on (or
        from ``start``, the end of a batch read before, to read ahead of the cursor)."""
        pos = self._cursor if start is None else start
        batch = Batch(start=pos, end=pos)
        used = 0
        while batch.size < max_entries:
            if pos.offset >= self._sizes.get(pos.segment, 0):
                later = [n for n in self._segments if n > pos.segment]
                if not later:
                    break
                pos = batch.end = Position(later[0], 0)
                continue
            recent = self._recent
            f = None
            offset = pos.offset
            full = False
            count = batch.size
            decode, entries, damaged = SpoolEntry.decode, batch.entries, batch.damaged
            while count < max_entries:
                hit = recent.get((pos.segment, offset))
                if hit is not None:  # appended by this process: its entry, not the file's line
                    size, entry = hit
                    if count and used + size > max_bytes:
                        full = True
                        break
                    entries.append(entry)
                    count += 1
                    offset += size
                    used += size
                    f = None  # the file's position no longer follows
                    continue
                if f is None:
                    f = self._open_reader(pos.segment)
                    f.seek(offset)
                line = f.readline()
                if not line.endswith(b"\n"):
                    break  # end of what was appended so far
                size = len(line)
                if count and used + size > max_bytes:
                    full = True
                    break
                entry = decode(line[:-1])
                if entry is None:
                    damaged.append(line[:-1])
                else:
                    entries.append(entry)
                count += 1
                offset += size
                used += size
            pos = batch.end = Position(pos.segment, offset)
            if full or pos.offset < self._sizes.get(pos.segment, 0):
                break
        return batch

    def commit(self, batch: Batch, durable: bool = True) -> None:
        """Mark ``batch`` delivered: move the cursor, remove segments read to their end.

        ``durable=False`` moves the cursor in memory only and leaves writing it (and removing
        what it passed) to the next ``sync_cursor``: the sender writes it while its next
        request is on the wire instead of between two requests. A crash before that write
        sends the batch again, which is harmless (the module docstring)."""
        if batch.end == self._cursor:
            if durable:
                self.sync_cursor()
            return
        end = batch.end
        last = self._segments[-1]
        drained = end == Position(last, self._sizes[last]) and self._sizes[last] > 0
        if drained and (self._sizes[last] >= DRAINED_ROTATE_BYTES or self._low_on_space()):
            self._start_segment(last + 1)
            end = Position(last + 1, 0)
        self._cursor = end
        self._forget_recent(end)
        self.pending_entries = max(0, self.pending_entries - batch.size)
        if self.pending_bytes <= self.max_bytes // 4:
            self._warned_half = False
        if durable:
            self.sync_cursor()

    def sync_cursor(self) -> None:
        """Write the cursor if it moved since it was last written, then remove the segments
        it has passed (only then: a crash in between must find the cursor's own segment)."""
        end = self._cursor
        if end == self._durable_cursor:
            return
        write_cursor(self.directory, end)
        self._durable_cursor = end
        for number in [n for n in self._segments if n < end.segment]:
            if self._reader_segment == number and self._reader is not None:
                self._reader.close()
                self._reader, self._reader_segment = None, -1
            self._path(number).unlink(missing_ok=True)
            self._segments.remove(number)
            del self._sizes[number]

    def _open_reader(self, number: int):
        if self._reader_segment != number:
            if self._reader is not None:
                self._reader.close()
            self._reader = open(self._path(number), "rb")  # noqa: SIM115
            self._reader_segment = number
        return self._reader

    # -- files -----------------------------------------------------------------------------

    def _path(self, number: int) -> Path:
        return segment_path(self.directory, number)

    def _count_pending(self) -> int:
        count = 0
        for number in self._segments:
            with open(self._path(number), "rb") as f:
                if number == self._cursor.segment:
                    f.seek(self._cursor.offset)
                while chunk := f.read(1 << 20):
                    count += chunk.count(b"\n")
        return count


@contextlib.contextmanager
def opened(directory: Path, **kwargs: int):
    """``with opened(dir) as spool:`` — for tools and tests that inspect a spool."""
    spool = Spool(directory, **kwargs)
    spool.open()
    try:
        yield spool
    finally:
        spool.close()
