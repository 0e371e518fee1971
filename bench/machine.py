"""What every benchmark records about the machine it ran on (read from /proc, Linux only)."""

from __future__ import annotations

from pathlib import Path


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def memory_kib() -> int:
    return int(Path("/proc/meminfo").read_text().split()[1])
