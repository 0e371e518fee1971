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
A crash between delivery and the cursor update replays the last batch: harmless, because every
record carries its deterministic ``_id`` (and run summaries their version), so Elasticsearch
answers "already there" instead of storing a second copy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from pipeline.sinks.base import DeliveryError

log = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".seg"
CURSOR_FILE = "cursor.json"
LOCK_FILE = "spool.lock"
DEFAULT_SEGMENT_BYTES = 16 * 2**20
# A drained tail segment at least this big is replaced by a fresh one, so delivered data does
# not linger on disk until the next size-based rotation.
DRAINED_ROTATE_BYTES = 2**20


# Free space an append always leaves on the spool's file system, so that a full disk still lets
# the sender write the (tiny) cursor file and delete delivered segments: without it a disk filled
# to the last byte could neither take new records nor make room by delivering old ones.
DEFAULT_RESERVE_BYTES = 64 * 1024


class SpoolError(RuntimeError):
    """The spool directory cannot be used (locked by another process, unreadable cursor…)."""


class SpoolLocked(SpoolError):
    """Another process holds the spool's lock; the message names the directory and its pid."""

    def __init__(self, directory: Path, holder: int | None) -> None:
        who = f"pid {holder}" if holder else "another process"
        super().__init__(
            f"spool {directory} is in use by {who} (lock {directory / LOCK_FILE}); each "
            "edgewatch process needs its own elasticsearch.spool_dir")
        self.directory = directory
        self.holder = holder


class SpoolWriteError(SpoolError, DeliveryError):
    """Records could not be made durable (disk full, I/O error): they were NOT acknowledged.

    The spool is left exactly as before the failed append (a partial write is cut off), so
    everything acknowledged earlier is intact and is still delivered; the caller keeps the
    records it tried to write (the cycle rolls its run state back and reports the cycle as
    not delivered).
    """


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One record as the spool keeps it: enough to rebuild its bulk action without parsing."""

    kind: str  # "check" | "run"
    id: str
    version: int | None
    source: bytes  # the document, serialised JSON

    def encode(self) -> bytes:
        if any(c in self.id for c in "\t\n\r"):
            raise ValueError(f"record id {self.id!r} contains a tab or newline")
        body = b"%s\t%s\t%s\t%s" % (
            self.kind.encode(), b"-" if self.version is None else str(self.version).encode(),
            self.id.encode(), self.source)
        return b"%08x\t%s\n" % (zlib.crc32(body), body)

    @classmethod
    def decode(cls, line: bytes) -> SpoolEntry | None:
        """The entry of one line (without its newline), or None if the line is damaged."""
        crc, sep, body = line.partition(b"\t")
        if not sep or len(crc) != 8:
            return None
        try:
            if int(crc, 16) != zlib.crc32(body):
                return None
            kind, version, rid, source = body.split(b"\t", 3)
            return cls(kind=kind.decode(), id=rid.decode(),
                       version=None if version == b"-" else int(version), source=source)
        except ValueError:
            return None


@dataclass(frozen=True, order=True, slots=True)
class Position:
    segment: int
    offset: int


@dataclass
class Batch:
    """Entries read from the spool, from ``start`` up to (not including) ``end``."""

    start: Position
    end: Position
    entries: list[SpoolEntry] = field(default_factory=list)
    damaged: list[bytes] = field(default_factory=list)  # lines that failed their CRC

    @property
    def size(self) -> int:
        return len(self.entries) + len(self.damaged)


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only segments with a delivered-up-to cursor; single writer, single reader.

    ``max_bytes`` bounds what is pending on disk. When an append would exceed it the newest
    records are refused (``append`` returns how many it took) and an error is logged every time:
    the caller counts and reports them. A warning is logged once the spool is half full.
    """

    def __init__(self, directory: Path, max_bytes: int = 1 << 30,
                 segment_bytes: int = DEFAULT_SEGMENT_BYTES,
                 reserve_bytes: int = DEFAULT_RESERVE_BYTES) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.reserve_bytes = reserve_bytes
        self._lock_fd: int | None = None
        self._cursor = Position(0, 0)
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
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            raise SpoolLocked(self.directory, holder) from exc
        # The holder's pid, for the message a second process shows (the flock is the lock).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        self._lock_fd = fd
        self._cursor = self._read_cursor()
        self._segments = sorted(
            int(p.stem) for p in self.directory.glob(f"*{SEGMENT_SUFFIX}") if p.stem.isdigit())
        for number in [n for n in self._segments if n < self._cursor.segment]:
            # Delivered; a crash came between the cursor update and their removal.
            self._path(number).unlink(missing_ok=True)
        self._segments = [n for n in self._segments if n >= self._cursor.segment]
        if self._segments:
            self._repair_tail(self._segments[-1])
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
        self.pending_entries = self._count_pending()
        if self.pending_entries:
            log.warning("spool %s holds %d undelivered record(s) (%s) from an earlier run; "
                        "they are sent first", self.directory, self.pending_entries,
                        human_bytes(self.pending_bytes))

    def close(self) -> None:
        for f in (self._writer, self._reader):
            if f is not None:
                f.close()
        self._writer = self._reader = None
        self._reader_segment = -1
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # -- state -----------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        total = sum(self._sizes.values())
        return total - self._cursor.offset if self._sizes else 0

    @property
    def cursor(self) -> Position:
        return self._cursor

    def is_empty(self) -> bool:
        return self.pending_bytes == 0

    # -- writing ---------------------------------------------------------------------------

    def append(self, entries: Iterable[SpoolEntry]) -> int:
        """Append and fsync; return how many entries were taken (the rest did not fit)."""
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
            _fsync_dir(self.directory)

    # -- reading ---------------------------------------------------------------------------

    def read(self, max_entries: int, max_bytes: int) -> Batch:
        """Up to ``max_entries`` / ``max_bytes`` (at least one entry) from the cursor on."""
        pos = self._cursor
        batch = Batch(start=pos, end=pos)
        used = 0
        while batch.size < max_entries:
            if pos.offset >= self._sizes.get(pos.segment, 0):
                later = [n for n in self._segments if n > pos.segment]
                if not later:
                    break
                pos = batch.end = Position(later[0], 0)
                continue
            f = self._open_reader(pos.segment)
            f.seek(pos.offset)
            offset = pos.offset
            full = False
            while batch.size < max_entries:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break  # end of what was appended so far
                if batch.size and used + len(line) > max_bytes:
                    full = True
                    break
                entry = SpoolEntry.decode(line[:-1])
                if entry is None:
                    batch.damaged.append(line[:-1])
                else:
                    batch.entries.append(entry)
                offset += len(line)
                used += len(line)
            pos = batch.end = Position(pos.segment, offset)
            if full or pos.offset < self._sizes.get(pos.segment, 0):
                break
        return batch

    def commit(self, batch: Batch) -> None:
        """Mark ``batch`` delivered: move the cursor, remove segments read to their end."""
        if batch.end == self._cursor:
            return
        end = batch.end
        last = self._segments[-1]
        drained = end == Position(last, self._sizes[last]) and self._sizes[last] > 0
        if drained and (self._sizes[last] >= DRAINED_ROTATE_BYTES or self._low_on_space()):
            self._start_segment(last + 1)
            end = Position(last + 1, 0)
        self._write_cursor(end)
        self._cursor = end
        self.pending_entries = max(0, self.pending_entries - batch.size)
        for number in [n for n in self._segments if n < end.segment]:
            if self._reader_segment == number and self._reader is not None:
                self._reader.close()
                self._reader, self._reader_segment = None, -1
            self._path(number).unlink(missing_ok=True)
            self._segments.remove(number)
            del self._sizes[number]
        if self.pending_bytes <= self.max_bytes // 4:
            self._warned_half = False

    def _open_reader(self, number: int):
        if self._reader_segment != number:
            if self._reader is not None:
                self._reader.close()
            self._reader = open(self._path(number), "rb")  # noqa: SIM115
            self._reader_segment = number
        return self._reader

    # -- files -----------------------------------------------------------------------------

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:020d}{SEGMENT_SUFFIX}"

    def _read_cursor(self) -> Position:
        path = self.directory / CURSOR_FILE
        try:
            data = orjson.loads(path.read_bytes())
            return Position(int(data["segment"]), int(data["offset"]))
        except FileNotFoundError:
            return Position(0, 0)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SpoolError(f"spool cursor {path} is unreadable ({exc}); move it away to "
                             "replay the whole spool (replays are idempotent)") from exc

    def _write_cursor(self, pos: Position) -> None:
        path = self.directory / CURSOR_FILE
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps({"segment": pos.segment, "offset": pos.offset}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.directory)

    def _repair_tail(self, number: int) -> None:
        """Cut an incomplete or damaged final line: the trace of a crash mid-append."""
        path = self._path(number)
        with open(path, "rb+") as f:
            data = f.read()
            if not data:
                return
            end = len(data)
            if not data.endswith(b"\n"):
                end = data.rfind(b"\n") + 1
            else:
                start = data.rfind(b"\n", 0, end - 1) + 1
                if SpoolEntry.decode(data[start:end - 1]) is None:
                    end = start
            if end != len(data):
                log.warning("spool segment %s ended in a torn record (%d bytes, never "
                            "acknowledged); cut off", path.name, len(data) - end)
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())

    def _count_pending(self) -> int:
        count = 0
        for number in self._segments:
            with open(self._path(number), "rb") as f:
                if number == self._cursor.segment:
                    f.seek(self._cursor.offset)
                while chunk := f.read(1 << 20):
                    count += chunk.count(b"\n")
        return count


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


@contextlib.contextmanager
def opened(directory: Path, **kwargs: int):
    """``with opened(dir) as spool:`` — for tools and tests that inspect a spool."""
    spool = Spool(directory, **kwargs)
    spool.open()
    try:
        yield spool
    finally:
        spool.close()
