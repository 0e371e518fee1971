"""The dual-stack lab's network namespace: created at start, always removed at stop.

IPv6 edges live in unique-local space (fd00::/8); such addresses must never be put on the
machine's own interfaces, so a dual-stack lab runs every one of its processes (authoritative
server, shims, edges, resolver daemons) inside a namespace of its own, `ewlab-<pid>-<token>`,
whose loopback carries the IPv6 edge addresses (each a /128 on `lo`; IPv4 127.0.0.0/8 is local
on `lo` anyway). Nothing inside can reach the outside: the namespace has no other interface.

Processes enter it with setns(2) between fork and exec (``preexec``), so their pids and command
lines stay theirs and the lab's process bookkeeping works unchanged. The lab's own Python code
(the readiness check, tests) reaches it from a thread that joined the namespace (``call_in``);
users reach it with ``ip netns exec <name> ...`` (``exec_prefix``).

The name carries the creating process's pid: a namespace whose creator is gone (a test process
killed with SIGKILL) and in which no process lives any more is an orphan, and ``reap_orphans``
(run at every dual-stack start and by `edgewatch-lab down`) deletes it. A detached lab
(`edgewatch-lab up` without --foreground) outlives its creator but its daemons live inside, so
it is left alone. Namespaces of other owners (other names) are never touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

NETNS_DIR = Path("/run/netns")
PREFIX = "ewlab-"
_NAME = re.compile(rf"{PREFIX}(\d+)-[0-9a-f]+")
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class NetnsError(RuntimeError):
    """A namespace could not be created or entered (the message names the command)."""


def new_name() -> str:
    return f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"


def _ip(*args: str, stdin: str | None = None) -> None:
    proc = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")


def create(name: str, addresses: Iterable[str]) -> None:
    """`ip netns add`, loopback up, every IPv6 address as a /128 on lo (one batch call)."""
    _ip("netns", "add", name)
    try:
        batch = ["link set lo up"] + [
            f"addr add {a}/128 dev lo nodad" for a in addresses
            if ipaddress.ip_address(a).version == 6]
        _ip("-n", name, "-batch", "-", stdin="\n".join(batch) + "\n")
    except BaseException:
        delete(name)
        raise


def delete(name: str) -> None:
    """Remove the namespace (its processes must have been stopped); absent is fine."""
    if (NETNS_DIR / name).exists():
        with contextlib.suppress(NetnsError):
            _ip("netns", "del", name)


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def reap_orphans() -> list[str]:
    """Delete lab namespaces whose creating process no longer exists; return their names."""
    gone = []
    for entry in NETNS_DIR.glob(f"{PREFIX}*") if NETNS_DIR.is_dir() else []:
        m = _NAME.fullmatch(entry.name)
        if m and not Path(f"/proc/{m.group(1)}").exists() and not occupied(entry.name):
            delete(entry.name)
            gone.append(entry.name)
    return gone


def occupied(name: str) -> bool:
    """Whether any process lives in the namespace (its /proc/PID/ns/net is the same inode)."""
    try:
        inode = os.stat(NETNS_DIR / name).st_ino
    except OSError:
        return False
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry / "ns" / "net").st_ino == inode:
                    return True
    return False


def enter(name: str) -> None:
    """Move the calling thread into the namespace (setns(2); network namespaces are per
    thread, so the rest of the process stays where it was)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def call_in(name: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread inside the namespace and return (or raise) its result.

    Sockets it creates belong to the namespace for their whole life, wherever they are used."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            enter(name)
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=body, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def preexec(name: str) -> Callable[[], None]:
    """A ``preexec_fn`` that puts the child into the namespace before it execs."""
    return lambda: enter(name)


def exec_prefix(name: str) -> list[str]:
    """What to put in front of a command so that it runs inside the namespace."""
    return ["ip", "netns", "exec", name]
