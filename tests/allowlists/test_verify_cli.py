"""``edgewatch allowlist verify`` and the report's list sections on a store written by the real
cycle with canned probes (no network): figures, JSON and exit status 0 / 1 / 2."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from test_cycle import CONFIG, STEP, T0, Clock, canned

from pipeline.cli import main
from pipeline.cycle import CycleRunner
from pipeline.runs import RunTracker
from pipeline.sinks.ndjson import NdjsonSink

# cycle -> answer: .1 throughout, .2 for the first two cycles, then .9 (outside the list)
ANSWERS = [["127.0.0.1", "127.0.0.2"]] * 2 + [["127.0.0.1", "127.0.0.9"]] * 2
WINDOW = ["--from", "2026-03-01T00:00:00Z", "--to", "2026-03-02T00:00:00Z", "--no-progress"]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    async def measure() -> None:
        clock, answer = Clock(), []
        runner = CycleRunner(replace(CONFIG, rdns_enabled=False), clock, RunTracker(),
                             [NdjsonSink(tmp_path / "data")], probes=canned(answer, []))
        await runner.open()
        for n, addrs in enumerate(ANSWERS):
            clock.t, answer[:] = T0 + n * STEP, addrs
            await runner.run_cycle()
        await runner.close()

    import asyncio
    asyncio.run(measure())
    (tmp_path / "fw.txt").write_text("# deployed\n127.0.0.0/31\n127.0.0.2\n")
    (tmp_path / "bad.txt").write_text("127.0.0.0/31\nnot-a-network\n")
    return tmp_path


def _verify(store: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["allowlist", "verify", "--store", str(store / "data"), *WINDOW, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_verify_figures_and_exit_status(store: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = _verify(store, capsys, "--list", str(store / "fw.txt"), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and err == ""
    assert (doc["checks"], doc["allowed"], doc["coverage"]) == (8, 6, 0.75)
    assert [(m["ip"], m["first"], m["checks"]) for m in doc["missed"]] == [
        ("127.0.0.9", "2026-03-01T12:30:00Z", 2)]
    assert [(d["checks"], d["allowed"]) for d in doc["days"]] == [(8, 6)]
    assert doc["groups"] == [{"target": "api.cycle.test", "resolver": "r1", "checks": 8,
                              "allowed": 6, "coverage": 0.75}]
    code, out, _ = _verify(store, capsys, "--list", str(store / "fw.txt"), "--min-coverage",
                           "75%")
    assert code == 0 and "covered (minimum 75.00%)" in out


def test_verify_usage_and_data_errors_exit_2(store: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = _verify(store, capsys, "--list", str(store / "bad.txt"))
    assert code == 2 and out == ""
    assert err.splitlines() == [f"edgewatch allowlist verify: {store / 'bad.txt'}:2: "
                                "'not-a-network' is not an address or a network such as "
                                "192.0.2.0/24"]
    code = main(["allowlist", "verify", "--list", str(store / "fw.txt"), "--store",
                 str(store / "data"), "--from", "2030-01-01", "--no-progress"])
    assert code == 2 and "no successful checks" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["allowlist", "verify", "--store", str(store / "data")])
    assert exc.value.code == 2
    assert "--list" in capsys.readouterr().err


def test_the_plain_allowlist_command_still_works(store: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    assert main(["allowlist", "--store", str(store / "data"), *WINDOW]) == 0
    assert "127.0.0.1/32" in capsys.readouterr().out


def test_report_has_a_section_per_list(store: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["report", "--store", str(store / "data"), "--list", str(store / "fw.txt"),
                 "--format", "json", *WINDOW])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    (section,) = doc["allowlists"]
    assert (section["name"], section["coverage"], section["missed"][0]["ip"]) == (
        "fw.txt", 0.75, "127.0.0.9")
    code = main(["report", "--store", str(store / "data"), "--list", str(store / "fw.txt"),
                 "--format", "html", *WINDOW])
    assert code == 0 and "Deployed allowlist fw.txt" in capsys.readouterr().out


def test_since_is_measured_back_from_now(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    async def measure() -> None:
        clock, answer = Clock(), ["127.0.0.1"]
        clock.t = datetime.now(UTC) - timedelta(hours=2)
        runner = CycleRunner(CONFIG, clock, RunTracker(), [NdjsonSink(tmp_path / "data")],
                             probes=canned(answer, []))
        await runner.open()
        assert (await runner.run_cycle()).delivered
        await runner.close()

    asyncio.run(measure())
    (tmp_path / "fw.txt").write_text("127.0.0.1\n")
    base = ["allowlist", "verify", "--list", str(tmp_path / "fw.txt"), "--store",
            str(tmp_path / "data"), "--no-progress"]
    assert main([*base, "--since", "3h"]) == 0
    assert "allowed 100.00% of 1 successful checks" in capsys.readouterr().out
    assert main([*base, "--since", "1h"]) == 2  # nothing in the last hour: a data error
    assert "no successful checks" in capsys.readouterr().err
