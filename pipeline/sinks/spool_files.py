"""The spool's files on disk: the line format of segments, the cursor file and the lock.

``spool.Spool`` decides what to append, read and commit; this module only knows how each file
looks and how it is written so that a crash at any instant leaves it usable: a segment line
carries its own CRC (so a torn tail is recognised and cut), the cursor is replaced atomically,
and the lock is an ``flock`` whose file names the holder's pid for a second process's message.
The layout itself is described in ``spool``'s docstring.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from pipeline.sinks.base import DeliveryError

# The spool's logger: one name for everything the spool says.
log = logging.getLogger("pipeline.sinks.spool")

SEGMENT_SUFFIX = ".seg"
CURSOR_FILE = "cursor.json"
LOCK_FILE = "spool.lock"


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

    kind: str  # a key of pipeline.es.names.KINDS: "check" | "run" | "event" | "afterlife"
    id: str
    version: int | None
    source: bytes  # the document, serialised JSON

    def encode(self) -> bytes:
        rid = self.id
        if "\t" in rid or "\n" in rid or "\r" in rid:
            raise ValueError(f"record id {self.id!r} contains a tab or newline")
        body = b"%s\t%s\t%s\t%s" % (
            self.kind.encode(), b"-" if self.version is None else str(self.version).encode(),
            rid.encode(), self.source)
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


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_path(directory: Path, number: int) -> Path:
    return directory / f"{number:020d}{SEGMENT_SUFFIX}"


def segment_numbers(directory: Path) -> list[int]:
    """The numbers of the segment files in ``directory``, oldest first."""
    return sorted(int(p.stem) for p in directory.glob(f"*{SEGMENT_SUFFIX}") if p.stem.isdigit())


def take_lock(directory: Path) -> int:
    """Hold the spool's ``flock`` (returns its fd) or raise ``SpoolLocked`` naming the holder."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        holder = _read_pid(fd)
        os.close(fd)
        raise SpoolLocked(directory, holder) from exc
    # The holder's pid, for the message a second process shows (the flock is the lock).
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
    return fd


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def read_cursor(directory: Path) -> Position:
    path = directory / CURSOR_FILE
    try:
        data = orjson.loads(path.read_bytes())
        return Position(int(data["segment"]), int(data["offset"]))
    except FileNotFoundError:
        return Position(0, 0)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SpoolError(f"spool cursor {path} is unreadable ({exc}); move it away to "
                         "replay the whole spool (replays are idempotent)") from exc


def write_cursor(directory: Path, pos: Position) -> None:
    """Replace the cursor atomically: write, fsync, rename, fsync of the directory."""
    path = directory / CURSOR_FILE
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(orjson.dumps({"segment": pos.segment, "offset": pos.offset}))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(directory)


def repair_tail(path: Path) -> None:
    """Cut an incomplete or damaged final line: the trace of a crash mid-append."""
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
