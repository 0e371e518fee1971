"""Peers of workloads 4 and 5: ``dnsperf`` (DNS throughput) and ``openssl s_time`` (handshakes).

Each runs as a child killed at its deadline; its own CPU comes from wait4's rusage.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from probe_common import HTTP_PATH, OpFigures, Work


@dataclass
class ToolRun:
    argv: list[str]
    returncode: int | None
    cpu_s: float
    wall_s: float
    output: str


def run_tool(argv: list[str], deadline: float, stdin: bytes | None = None) -> ToolRun:
    """Run a child, killing it at the deadline; its own CPU from wait4's rusage."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
        if stdin:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
    return ToolRun(argv, proc.returncode, usage.ru_utime + usage.ru_stime, wall, text)


def dnsperf(work: Work, queries: int, outstanding: int, folder: Path, deadline: float
            ) -> tuple[OpFigures, ToolRun]:
    data = folder / "dnsperf.txt"
    data.write_text(f"{work.qname} A\n")
    seconds = max(1, int(deadline - time.monotonic()))
    argv = ["dnsperf", "-s", work.resolver.address, "-p", str(work.resolver.port), "-d",
            str(data), "-n", str(queries), "-q", str(outstanding), "-c", "1", "-t", "1",
            "-l", str(seconds), "-e"]
    run = run_tool(argv, deadline + 5)

    def num(label: str) -> float:
        m = re.search(rf"{label}:\s+([\d.]+)", run.output)
        return float(m.group(1)) if m else float("nan")

    fig = OpFigures("dnsperf", "dns", queries, concurrency=outstanding)
    fig.done = int(num("Queries sent")) if "Queries sent" in run.output else 0
    fig.ok = int(num("Queries completed")) if "Queries completed" in run.output else 0
    fig.cpu_s = run.cpu_s
    fig.wall_s = num("Run time \\(s\\)")
    lost = num("Queries lost")
    if lost == lost and lost:  # not NaN, not zero
        fig.errors["lost"] = int(lost)
    codes = re.search(r"Response codes:\s+(.*)", run.output)
    fig.note = f"response codes: {codes.group(1).strip()}" if codes else ""
    if run.returncode != 0:
        fig.note = f"exit {run.returncode}: {run.output.strip()[-300:]}"
    return fig, run


def s_time_argv(edge: str, port: int, ca: str, seconds: int, www: bool = False) -> list[str]:
    """New verifying handshakes for ``seconds`` (one place, so every measurement of s_time
    asks it the same thing)."""
    argv = ["openssl", "s_time", "-connect", f"{edge}:{port}", "-new", "-time", str(seconds),
            "-CAfile", ca, "-verify", "2"]
    return [*argv, "-www", HTTP_PATH] if www else argv


def s_time(work: Work, seconds: int, www: bool, deadline: float) -> tuple[OpFigures, ToolRun]:
    run = run_tool(s_time_argv(work.edge, work.port, str(work.ca), seconds, www), deadline)
    fig = OpFigures("openssl s_time", "http" if www else "tls", 0, concurrency=1)
    m = re.search(r"(\d+) connections in ([\d.]+)s; ([\d.]+) connections/user sec", run.output)
    if m:
        fig.done = fig.ok = fig.requested = int(m.group(1))
    fig.wall_s = run.wall_s  # its own "real seconds" line is whole seconds only
    fig.cpu_s = run.cpu_s
    if not m or run.returncode != 0:
        fig.note = f"exit {run.returncode}: {run.output.strip()[-300:]}"
    return fig, run
