"""bench/run.py's table: met/not decided against the target, and the block between the markers
replaced in place (the rest of docs/BENCHMARKS.md untouched, a second run not appending)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from run_table import BEGIN, END, Row, section, write_between_markers  # noqa: E402


def test_met_follows_the_direction_of_the_target() -> None:
    assert Row("cpu", "1", "2", ratio=0.79, goal=0.8).met == "met"
    assert Row("cpu", "1", "2", ratio=0.81, goal=0.8).met == "not met"
    assert Row("rate", "1", "2", ratio=0.96, goal=0.95, better="higher").met == "met"
    assert Row("rate", "1", "2", ratio=0.94, goal=0.95, better="higher").met == "not met"
    assert Row("rate", "—", "—", goal=0.95, better="higher").met == "not measured"
    assert Row("limit", "1", "2", ratio=3.0).met == "—"


def test_the_block_is_replaced_between_the_markers(tmp_path: Path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nprose before\n")
    write_between_markers(doc, section([Row("a", "1 µs", "2 µs", 0.5, 0.8)], ["first"], []))
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nprose before\n") and text.count(BEGIN) == 1
    assert "| a | 1 µs | 2 µs | 0.50× | — | met |" in text
    doc.write_text(text + "\nprose after\n")
    write_between_markers(doc, section([Row("b", "3 µs", "2 µs", 1.5, 0.8)], ["second"], []))
    text = doc.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert "first" not in text and "| b | 3 µs | 2 µs | 1.50× | — | not met |" in text
    assert text.startswith("# Benchmarks\n\nprose before\n") and text.endswith("prose after\n")


def test_an_unknown_workload_is_one_line_naming_it() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--only", "dns,probe"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown workload dns" in proc.stderr.strip().splitlines()[-1]
