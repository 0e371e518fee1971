"""bench/run.py's table: met/not decided against the target, and the block between the markers
replaced in place (the rest of docs/BENCHMARKS.md untouched, a second run not appending)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_report_rows_judge_the_warm_node_and_the_node_just_started_apart(monkeypatch) -> None:
    """bench_report's JSON line gives two rows against the 10 s: a fresh process on a warm
    node with the request cache off (the slower of two), and the first command on a node just
    started, whose note says how much of the node's CPU its JIT compiler took."""
    import run_es
    from peer_tools import ToolRun

    printed = "\n".join([
        "  loaded 10,000,000 checks",
        json.dumps({"documents": 10000384, "runs": 319081, "report_cli_es_s": 10.4,
                    "report_cli_node_cpu_s": {"jit": 4.1, "gc": 0.1, "other": 8.0},
                    "report_cli_es_warm_uncached_s": [5.5, 5.3],
                    "report_cli_warm_node_cpu_s": [{"jit": 0.8, "gc": 0.1, "other": 5.7}] * 2}),
    ])
    seen: list[list[str]] = []

    def child(script, argv, deadline):
        seen.append(argv)
        return ToolRun([], 0, 1.0, 1.0, printed)

    monkeypatch.setattr(run_es, "child", child)
    details: list[str] = []
    warm, first = run_es.report("http://127.0.0.1:9200", 10_000_000, 0.0, details,
                                Path("/run/node.pid"))
    assert seen[0][-2:] == ["--node-pid-file", "/run/node.pid"]
    assert (warm.edgewatch, warm.met, warm.note) == ("5.5 s", "met", "slower of 5.5 / 5.3 s")
    assert (first.edgewatch, first.met) == ("10.4 s", "not met")
    assert first.note == "node CPU 12.2 s, of which JIT compiler 4.1 s"
    assert "report_cli_node_cpu_s" in details[0]


def test_jvm_threads_are_summed_by_kind() -> None:
    """The JIT and GC threads are told from the rest by HotSpot's thread names; a thread that
    started between the snapshots counts from zero; this process's own threads read back."""
    from jvm_cpu import by_kind, kind, threads_cpu

    assert [kind(n) for n in ("C2 CompilerThre", "C1 CompilerThre", "GC Thread#3", "G1 Conc#0",
                              "elasticsearch[", "VM Thread")] == [
        "jit", "jit", "gc", "gc", "other", "other"]
    before = {"1 C2 CompilerThre": 1.0, "2 elasticsearch[": 2.0}
    after = {"1 C2 CompilerThre": 3.5, "2 elasticsearch[": 2.5, "3 GC Thread#0": 0.25}
    assert by_kind(before, after) == {"jit": 2.5, "gc": 0.25, "other": 0.5}
    mine = threads_cpu(os.getpid())
    assert mine and all(v >= 0 for v in mine.values())


def test_the_soak_row_reads_the_last_json_line_and_a_bad_one_is_skipped(monkeypatch) -> None:
    """bench_soak's figures are its last JSON line; a line that only starts like one (the
    ``{`` of an indented object) is skipped instead of failing the runner's whole ES part."""
    import run_es
    from peer_tools import ToolRun

    figures = {"rss_growth_pct": 2.5, "written_checks": 80203, "rss_day1_mib": 80.1,
               "rss_last_day_mib": 82.1, "fds_after_day1": [15, 17]}
    printed = "\n".join(["  day 1: cycle 96, RSS 80.1 MiB", json.dumps(figures), "{", ' "x": 1'])
    monkeypatch.setattr(run_es, "child", lambda *a, **k: ToolRun([], 0, 1.0, 1.0, printed))
    monkeypatch.setattr(run_es, "BENCH", Path(__file__).resolve().parents[1] / "bench")
    row = run_es.soak("http://127.0.0.1:9200", 0.0)
    assert (row.edgewatch, row.met) == ("+2.5 %", "met")
    assert row.note == "80203 checks written; RSS 80.1 → 82.1 MiB; open fds after day 1: 15–17"
    assert run_es.last_json("{\n \"a\": 1\n}") is None


def test_a_broken_es_workload_leaves_the_others_rows(monkeypatch, tmp_path) -> None:
    """The ingest breaking (here: raising) is one row saying so; the report and soak rows the
    same node then gave are still written (the node itself is a stand-in: nothing is measured)."""
    import argparse
    from types import SimpleNamespace

    import run
    import run_es
    from probe_common import Budget

    import devstack.node

    stopped = []
    node = SimpleNamespace(url="http://127.0.0.1:1", run_dir=tmp_path,
                           stop=lambda: stopped.append(True))
    monkeypatch.setattr(devstack.node, "start_node", lambda **kw: node)

    def broken(*a, **k):
        raise ValueError("no table in the output")

    monkeypatch.setattr(run_es, "ingest", broken)
    monkeypatch.setattr(run_es, "report", lambda *a, **k: [Row("report", "5.0 s", "—")])
    monkeypatch.setattr(run_es, "soak", lambda *a, **k: Row("soak", "+1.0 %", "—"))
    args = argparse.Namespace(only={"ingest", "report"}, soak=True, ingest_docs=10, rounds=1,
                              report_docs=10)
    rows = run.es_workloads(args, Budget(60), tmp_path, [])
    assert [(r.work, r.edgewatch) for r in rows] == [
        ("ingest workloads", "not measured"), ("report", "5.0 s"), ("soak", "+1.0 %")]
    assert "ValueError: no table in the output" in rows[0].note and stopped == [True]


def test_an_s_time_run_killed_at_its_deadline_adds_no_figure(monkeypatch) -> None:
    """s_time killed before it printed its count did work the runner cannot divide: its CPU
    must not join the peer's figure (it once showed as a round of 0 µs), and no round follows."""
    import run_probe
    from probe_common import OpFigures

    runs = iter([600, 0, 600, 600])

    def s_time(work, seconds, www, deadline):
        done = next(runs)
        return OpFigures("openssl s_time", "tls", 0, done=done, ok=done, cpu_s=0.6), None

    ours = []

    def ew_ops(work, op, count, concurrency, deadline, warmup=0):
        ours.append(count)
        return OpFigures("edgewatch", op, count, done=count, ok=count, cpu_s=count * 9e-4)

    monkeypatch.setattr(run_probe, "s_time", s_time)
    monkeypatch.setattr(run_probe, "ew_ops", ew_ops)
    details: list[str] = []
    row, www = run_probe.vs_s_time(object(), 3, 2, 0.0, details)
    assert row.peer == "openssl s_time: 1,000 µs"  # 2,000 µs with the killed run's CPU in it
    assert row.ratio == pytest.approx(0.9)
    assert www.peer == "openssl s_time: 1,000 µs"  # the GET row's two rounds are whole
    assert ours == [600] * 4  # no edgewatch run after the killed s_time


def test_tls_count_sums_callgrind_lines_by_object_and_groups_them(monkeypatch, tmp_path) -> None:
    import bench_tls_count

    annotated = (
        "1,000 (10%)  ssl/x.c:EVP_thing [/usr/lib/x86_64-linux-gnu/libcrypto.so.3]\n"
        "  500 (5%)  ssl/y.c:other [/usr/lib/x86_64-linux-gnu/libcrypto.so.3]\n"
        "  300 (3%)  Python/ceval.c:_PyEval [/root/lib/libpython3.11.so.1.0]\n"
        "   40 (0%)  Modules/x.c:f [/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so]\n"
        "   20 (0%)  memcpy [/usr/lib/x86_64-linux-gnu/libc.so.6]\n"
        "    7 (0%)  ???:0x1 [/site-packages/cryptography/hazmat/bindings/_rust.abi3.so]\n"
        "1,867 (100%)  PROGRAM TOTALS\n")

    def fake_run(argv, **kw):
        return subprocess.CompletedProcess(argv, 0, stdout=annotated, stderr="")

    monkeypatch.setattr(bench_tls_count.subprocess, "run", fake_run)
    totals = bench_tls_count._by_object(tmp_path / "x.out")
    assert totals["libcrypto.so.3"] == 1500  # the totals line carries no object: not counted
    groups = bench_tls_count._groups(totals)
    assert groups == {"libcrypto": 1500, "interpreter": 340, "libc": 20, "other": 7}


def test_tls_count_clock_reads_perf_samples_by_object_as_microseconds(monkeypatch,
                                                                      tmp_path) -> None:
    import bench_tls_count

    reported = (
        "# Samples: 3K of event 'cpu-clock'\n"
        "# Overhead       Samples  Shared Object\n"
        "    48.77%          1871  libcrypto.so.3                              \n"
        "    25.83%           991  libpython3.11.so.1.0\n"
        "     7.04%           270  [kernel.kallsyms]\n"
        "     0.26%            10  _socket.cpython-311-x86_64-linux-gnu.so\n"
        "#\n"
        "# (Tip: a line that is not a sample row)\n")

    def fake_run(argv, **kw):
        assert argv[:2] == ["perf", "report"] and "dso" in argv
        return subprocess.CompletedProcess(argv, 0, stdout=reported, stderr="")

    monkeypatch.setattr(bench_tls_count.subprocess, "run", fake_run)
    totals = bench_tls_count._by_object_clock(tmp_path / "x.perf")
    period_us = bench_tls_count.PERIOD_NS // 1000
    assert totals["libcrypto.so.3"] == 1871 * period_us
    assert bench_tls_count._groups(totals) == {
        "libcrypto": 1871 * period_us, "interpreter": 1001 * period_us,
        "kernel": 270 * period_us}
    table = bench_tls_count._table(
        {"s_time": [{"libcrypto": 500.0}, {"libcrypto": 700.0}, {"libcrypto": 600.0}],
         "probe": [{"libcrypto": 650.0, "interpreter": 250.0}]},
        {"s_time": [1, 2, 3], "probe": [4]}, clock=True)
    assert "| s_time | 1+2+3 | 600 µs |" in table  # the median of the rounds
    assert table.rstrip().endswith("| 900 µs | 1.500 |")
