"""A local JVM's CPU seconds by kind of thread (JIT compiler, GC, the rest), read from /proc.

The first ``edgewatch report`` on an Elasticsearch node just started costs the node 12–20
CPU-seconds against 6–11 once the node has run it: clearing every cache the node has does not
bring the difference back, and this split says where it goes (the C1/C2 compiler threads
compiling the aggregation code, and that code running slower until they have). A cluster
that has been up for a while has paid it. Linux only; the process must be readable (root, or
the node's own user).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def kind(thread_name: str) -> str:
    """``jit`` for HotSpot's compiler threads, ``gc`` for its collectors, else ``other``."""
    if thread_name.startswith(("C1 Compiler", "C2 Compiler")):
        return "jit"
    if thread_name.startswith(("GC Thread", "G1 ")):
        return "gc"
    return "other"


def threads_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of every live thread of ``pid``, by thread id."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended between the listing and the read
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[f"{task.name} {name}"] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def by_kind(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds spent between two ``threads_cpu`` snapshots, summed by ``kind``. A thread
    that ended in between is lost (HotSpot's compiler threads can come and go: the JIT figure
    is a lower bound)."""
    spent: Counter[str] = Counter({"jit": 0.0, "gc": 0.0, "other": 0.0})
    for key, cpu in after.items():
        spent[kind(key.split(" ", 1)[1])] += cpu - before.get(key, 0.0)
    return {k: round(v, 2) for k, v in spent.items()}


def pid_from_file(path: Path | None) -> int | None:
    """The pid in a node's pid file (``elasticsearch -p``), or None when not given/readable."""
    if path is None:
        return None
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}/task").is_dir() else None
