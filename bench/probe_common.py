"""What every workload of the probe benchmark shares: the budget, the workload, op figures.

Each workload module (probe_cycles, probe_ops, peer_blackbox, peer_tools) takes a ``Work`` and a
deadline and returns ``OpFigures`` (or its own figures); bench_probe.py runs them in order.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.config import Config, Resolver  # noqa: E402

HTTP_PATH = "/directory"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench_probe {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Budget:
    """One overall deadline; each phase gets min(its own cap, what is left)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def deadline(self, cap: float) -> float:
        return min(self.end, time.monotonic() + cap)

    def left(self) -> float:
        return self.end - time.monotonic()


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_only(cfg: Config) -> None:
    hosts = [r.address for r in cfg.resolvers]
    if cfg.rdns_resolver:
        hosts.append(cfg.rdns_resolver[0])
    bad = [h for h in hosts if not is_loopback(h)]
    if bad:
        raise SystemExit(f"refusing to run: config points off loopback: {bad}")


@dataclass
class OpFigures:
    tool: str
    op: str
    requested: int
    done: int = 0
    ok: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    concurrency: int = 1
    note: str = ""
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def cpu_per_op_us(self) -> float | None:
        return self.cpu_s / self.done * 1e6 if self.done else None

    @property
    def ops_per_s(self) -> float | None:
        return self.ok / self.wall_s if self.wall_s > 0 else None


async def drive_async(fig: OpFigures, one: Callable[[], Awaitable[tuple[bool, str | None]]],
                      deadline: float) -> OpFigures:
    """Run `one` fig.requested times with fig.concurrency workers, stopping at the deadline."""
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < fig.requested and time.monotonic() < deadline:
            issued += 1
            ok, err = await one()
            fig.done += 1
            fig.ok += ok
            if err:
                fig.errors[err] = fig.errors.get(err, 0) + 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(fig.concurrency)))
    fig.cpu_s, fig.wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    if fig.done < fig.requested:
        fig.note = f"deadline hit after {fig.done}"
    return fig


@dataclass
class Work:
    """The shared workload of the single-operation comparisons."""

    resolver: Resolver
    qname: str
    edge: str
    port: int
    server_name: str
    ca: Path
    dns_timeout: float
    connect_timeout: float
    tls_timeout: float
    http_timeout: float


def cpu_us(fn: Callable[[], object], n: int, deadline: float) -> tuple[float, int]:
    """Mean CPU µs of fn over up to n calls (fewer if the deadline comes first)."""
    done = 0
    t0 = time.process_time()
    while done < n and time.monotonic() < deadline:
        fn()
        done += 1
    return (time.process_time() - t0) / max(done, 1) * 1e6, done


def proc_cpu(pid: int) -> float:
    """utime+stime of a process (all its threads, live and exited), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
