"""Proof that a run without integration tests starts no JVM and no resolver daemon.

Enabled when the mark expression deselects integration tests (``-m "not integration"``) or
``EDGEWATCH_DAEMON_GUARD=1`` (any run; daemons started while an integration test runs are
expected): the pytest process becomes a child subreaper (so a daemon a
detached child leaves behind is still its descendant), a thread looks at the process table every
0.1 s for descendants named like the devstack node or a lab resolver, and the session fails,
naming the test that was running, if one appeared while an unmarked test ran. Only descendants
count (names from ``/proc/<pid>/comm``), so the daemons of other test runs on the machine do not.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import pytest

DAEMONS = frozenset({"java", "unbound", "kresd", "pdns_recursor"})
PR_SET_CHILD_SUBREAPER = 36
POLL_S = 0.1


def _stat(pid: str) -> tuple[str, int] | None:
    """(comm, ppid) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    return comm, int(text[text.rindex(")") + 2:].split()[1])


def descendant_daemons(root: int) -> dict[int, str]:
    """Processes below ``root`` whose name is one of DAEMONS: ``{pid: name}``."""
    table = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(p))}
    found = {}
    for pid, (comm, _) in table.items():
        if comm not in DAEMONS:
            continue
        up, seen = table[pid][1], set()
        while up > 1 and up not in seen and up != root:
            seen.add(up)
            up = table[up][1] if up in table else 0
        if up == root:
            found[pid] = comm
    return found


class Guard:
    def __init__(self) -> None:
        self.current = "(collection)"
        self.allowed = False  # the running test is marked integration: its daemons are expected
        self.seen: dict[int, tuple[str, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="daemon-guard", daemon=True)

    def start(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
        self._thread.start()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(POLL_S):
            for pid, comm in descendant_daemons(me).items():
                if pid not in self.seen and not self.allowed:
                    self.seen[pid] = (comm, self.current)
                self.seen.setdefault(pid, ("", ""))  # known: never blamed on a later test

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for pid, comm in descendant_daemons(os.getpid()).items():  # one last look
            if not self.allowed:
                self.seen.setdefault(pid, (comm, self.current))

    def offenders(self) -> list[tuple[int, str, str]]:
        return sorted((pid, comm, test) for pid, (comm, test) in self.seen.items() if comm)


_guard: Guard | None = None


def _wanted(config: pytest.Config) -> bool:
    expr = (config.getoption("markexpr", "") or "").replace(" ", "")
    return "notintegration" in expr or os.environ.get("EDGEWATCH_DAEMON_GUARD") == "1"


def pytest_configure(config: pytest.Config) -> None:
    global _guard
    if _wanted(config) and _guard is None:
        _guard = Guard()
        _guard.start()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _guard is not None:
        _guard.current = item.nodeid
        _guard.allowed = item.get_closest_marker("integration") is not None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _guard is None:
        return
    _guard.stop()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    offenders = _guard.offenders()
    if offenders:
        for pid, comm, test in offenders:
            line = f"daemon guard: {comm} (pid {pid}) started during {test}, not marked integration"
            if reporter is not None:
                reporter.write_line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None:
        reporter.write_line("daemon guard: no java/unbound/kresd/pdns_recursor process started")
