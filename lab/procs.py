"""Starting and stopping the lab's processes so that none is ever left behind.

Every process gets its own session (so its process group id is its pid) and is stopped by
signalling the whole group: TERM, a short wait, then KILL. When the lab runs inside a test
process, children also get PR_SET_PDEATHSIG so they die with it even if it is killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class Managed:
    """One started process: what it is and how to find it again from another process."""

    name: str
    argv: list[str]
    pid: int
    log: Path
    popen: subprocess.Popen | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "argv": self.argv, "pid": self.pid, "log": str(self.log)}

    @classmethod
    def from_dict(cls, raw: dict) -> Managed:
        return cls(name=raw["name"], argv=list(raw["argv"]), pid=int(raw["pid"]),
                   log=Path(raw["log"]))

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return is_ours(self.pid, self.argv)


def _child_setup(die_with_parent: bool, netns: str | None) -> Callable[[], None] | None:
    """What the child runs between fork and exec: the death signal, the lab's namespace."""
    if not die_with_parent and netns is None:
        return None

    def setup() -> None:
        if die_with_parent:
            _die_with_parent()
        if netns is not None:
            from lab.netns import enter

            enter(netns)

    return setup


def spawn(name: str, argv: list[str], log: Path, cwd: Path, die_with_parent: bool,
          netns: str | None = None) -> Managed:
    """Start argv in a new session with stdout+stderr appended to `log` (inside the network
    namespace `netns` when given: the dual-stack lab)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_child_setup(die_with_parent, netns),
            close_fds=True)
    return Managed(name=name, argv=argv, pid=popen.pid, log=log, popen=popen)


def is_ours(pid: int, argv: list[str]) -> bool:
    """The pid is alive (not a zombie) and still runs the command we started (pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return bool(cmdline) and cmdline[0].decode(errors="replace") == argv[0]


def stop(proc: Managed, grace: float = 3.0) -> None:
    """TERM the process group, wait up to `grace` s, then KILL it; reap if it is our child."""
    if proc.alive():
        _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while proc.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
    _signal_group(proc.pid, signal.SIGKILL)  # also catches grandchildren left in the group
    if proc.popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=grace)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stragglers(marker: str) -> list[int]:
    """Pids of live processes whose command line mentions `marker` (the run folder)."""
    out = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state != "Z" and marker.encode() in cmdline:
            out.append(int(entry.name))
    return out


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
