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


def test_ingest_reads_the_whole_path_and_the_drain_from_bench_indexing(monkeypatch) -> None:
    """The ingest workload turns bench_indexing's table (lines as it prints them) into three
    rows: the whole path against the target, the same against raw ``_bulk`` two requests at a
    time, the drain of a spooled backlog beside them."""
    import run_es
    from peer_tools import ToolRun

    printed = "\n".join([
        "| path | docs/s (median) | per round | client CPU ms / 1000 docs (median) |",
        "|---|---|---|---|",
        "| raw `_bulk` (sync client, pre-serialised ndjson) | 13162 | 13162, 11700 | 12 |",
        "| two in flight: the same raw `_bulk` bodies from 2 threads | 15020 | 15020 | 13 |",
        "| edgewatch sink (spool + fsync + bulk of the spooled bytes) | 10842 | 11065 | 31 |",
        "| spool drain: the sink delivering a backlog spooled beforehand | 12460 | 12174 | 12 |",
        "",
        "**ratio sink / raw = 0.82** (medians; per round, same-round pairs: 0.84, 0.90, 0.76)",
        "",
        "ratio drain / raw = 0.95 (medians; per round, same-round pairs: 0.92, 1.06, 0.88)",
        "",
        "ratio sink / raw with two in flight = 0.72 (medians; per round, same-round pairs: "
        "0.70, 0.74)",
    ])
    monkeypatch.setattr(run_es, "child", lambda *a, **k: ToolRun([], 0, 1.0, 1.0, printed))
    details: list[str] = []
    whole, two, drain = run_es.ingest("http://127.0.0.1:9200", 10000, 3, 0.0, details)
    assert (whole.edgewatch, whole.peer, whole.ratio, whole.met) == (
        "10,842 (sink)", "raw `_bulk` 13,162", 0.82, "not met")
    assert (two.edgewatch, two.peer, two.ratio, two.met) == (
        "10,842 (sink)", "raw `_bulk` ×2 15,020", 0.72, "—")
    assert (drain.edgewatch, drain.ratio, drain.met) == ("12,460 (drain)", 0.95, "—")
    assert details == ["ingest: same-round pairs sink/raw 0.84, 0.90, 0.76",
                       "ingest: same-round pairs sink/raw two in flight 0.70, 0.74",
                       "ingest: same-round pairs drain/raw 0.92, 1.06, 0.88"]
