"""One process per directory: an exclusive ``flock`` on a lock file inside it.

Two ``edgewatch run`` processes on one state dir give one resolver/address two different run ids;
on one ndjson store they write every ``_id`` twice. The lock makes the second process refuse to
start, naming the directory and the holder's pid (written into the lock file). ``flock`` locks die
with their process, so a ``kill -9`` never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable
from pathlib import Path

LOCK_NAME = ".edgewatch.lock"


class LockError(RuntimeError):
    """A directory is held by another process, or cannot be locked at all."""


class DirLock:
    """An exclusive lock on one directory, created if missing."""

    def __init__(self, directory: Path, role: str) -> None:
        self.directory = Path(directory)
        self.role = role
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.directory / LOCK_NAME

    def acquire(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LockError(f"{self.role} {self.directory}: cannot be used: "
                            f"{exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise LockError(f"{self.role} {self.directory} is in use by another edgewatch "
                            f"process ({who}); stop it or give this one other directories"
                            ) from exc
        except OSError as exc:
            os.close(fd)
            raise LockError(f"{self.role} {self.directory}: cannot be locked: "
                            f"{exc.strerror or exc}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock; the file stays, harmless
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def locked(dirs: Iterable[tuple[str, Path]]):
    """Hold every ``(role, directory)`` lock for the block (each distinct directory once)."""
    held: list[DirLock] = []
    seen: set[Path] = set()
    try:
        for role, directory in dirs:
            key = Path(directory).absolute()
            if key in seen:
                continue
            seen.add(key)
            lock = DirLock(Path(directory), role)
            lock.acquire()
            held.append(lock)
        yield held
    finally:
        for lock in reversed(held):
            lock.release()
