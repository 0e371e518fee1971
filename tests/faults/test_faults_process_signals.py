"""Process faults with real ``edgewatch run`` subprocesses: SIGTERM/SIGINT mid-cycle, two processes
on one state dir and store, the cycle abandoned past its bound, and how the CLI presents itself.

The resolver is a DNS peer on 127.0.0.1 that answers after 1.5 s, so a signal sent once the
query reached the peer lands inside the cycle. The interval is 15 minutes: anything that happens
within seconds is the first cycle, never a second one.
"""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import subprocess
import time
from pathlib import Path

import pytest
from faults_cycle_helpers import (
    EDGEWATCH,
    DnsPeer,
    closed_port,
    loopback_addresses,
    start_run,
    stop,
    store_lines,
    write_config,
)

from pipeline.cli import build_parser
from pipeline.config import load_config
from pipeline.cycle import CycleRunner, Probes, cycle_budget
from pipeline.runs import RunTracker
from pipeline.scheduler import Stop, run_guarded, shutdown_grace
from pipeline.sinks.ndjson import NdjsonSink

SLOW = 1.5


@pytest.mark.parametrize(("args", "sig"), [
    (("--once",), signal.SIGTERM),
    (("--no-align",), signal.SIGTERM),
    (("--no-align",), signal.SIGINT),
])
def test_a_signal_mid_cycle_finishes_and_writes_the_cycle(tmp_path: Path, args, sig) -> None:
    with DnsPeer(loopback_addresses(3), delay=SLOW) as peer:
        config = write_config(tmp_path, peer.port, target_port=closed_port())
        proc = start_run(config, *args)
        try:
            # --no-align: the first cycle starts now, not one 15-minute interval later.
            assert peer.wait_queries(1, timeout=30), "the cycle never reached the resolver"
        except BaseException:
            proc.kill()
            raise
        assert not store_lines(tmp_path / "data", "checks")  # the signal lands in flight
        rc, out, err = stop(proc, sig)
    assert rc == 0, err
    assert "Traceback" not in err and "CancelledError" not in err
    assert "finishing the cycle in flight" in err
    checks = store_lines(tmp_path / "data", "checks")
    assert sorted(d["destination.ip"] for d in checks) == loopback_addresses(3)
    assert {d["edgewatch.cycle.id"] for d in checks} == {checks[0]["edgewatch.cycle.id"]}
    assert len(store_lines(tmp_path / "data", "runs")) == 3
    assert "3 distinct addresses" in out
    # The run state was committed: a restart continues the three runs.
    tracker = RunTracker(tmp_path / "state" / "runs-faults-observer.sqlite3")
    assert {r.id for r in tracker.open_runs()} == {d["edgewatch.run.id"] for d in checks}
    tracker.close()


def test_a_second_signal_abandons_the_cycle_and_exits_non_zero(tmp_path: Path) -> None:
    with DnsPeer(loopback_addresses(3), delay=SLOW) as peer:
        config = write_config(tmp_path, peer.port, target_port=closed_port())
        proc = start_run(config, "--once")
        assert peer.wait_queries(1, timeout=30)
        proc.send_signal(signal.SIGTERM)
        # Two signals sent at once may merge into one: the second goes once the first is seen.
        first = proc.stderr.readline()
        assert "finishing the cycle in flight" in first
        rc, _, err = stop(proc, signal.SIGTERM)
    assert rc == 3, err
    assert "abandoned" in err and "Traceback" not in err
    assert not store_lines(tmp_path / "data", "checks")
    tracker = RunTracker(tmp_path / "state" / "runs-faults-observer.sqlite3")
    assert tracker.open_runs() == []  # run state not committed
    tracker.close()


async def test_a_cycle_outliving_its_bound_is_abandoned_uncommitted(tmp_path: Path) -> None:
    """The bound comes from the configured timeouts; a probe that ignores them is cut there."""
    config = load_config(write_config(tmp_path, 53, target_port=closed_port(),
                                      dns_timeout=0.2, connect=0.1, tls=0.1, http=0.1), env={})
    grace = shutdown_grace(config)
    assert grace == pytest.approx(cycle_budget(config) + 5.0)
    assert cycle_budget(config) >= sum((0.2, 0.1, 0.1, 0.1))

    async def hanging_dns(*args, **kw):
        await asyncio.sleep(3600)

    store = tmp_path / "data"
    tracker = RunTracker(tmp_path / "runs.sqlite3")
    runner = CycleRunner(config, __import__("pipeline.clock").clock.real_clock(), tracker,
                         [NdjsonSink(store)], probes=Probes(dns=hanging_dns))
    await runner.open()
    stop_ = Stop()
    asyncio.get_running_loop().call_later(0.1, stop_.signal)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stats = await run_guarded(runner, stop_, grace=0.5)
    elapsed = loop.time() - t0
    await runner.close()
    assert stats is None
    assert 0.5 <= elapsed < 3 * (0.1 + 0.5)
    assert not list(store.glob("checks-*.ndjson")) or not store_lines(store, "checks")
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []


def test_a_second_process_on_the_same_dirs_refuses_to_start(tmp_path: Path) -> None:
    with DnsPeer(loopback_addresses(2)) as peer:
        config = write_config(tmp_path, peer.port, target_port=closed_port())
        first = start_run(config)  # aligned on a 15-minute grid: it holds the dirs meanwhile
        try:
            lock = tmp_path / "state" / ".edgewatch.lock"
            for _ in range(300):
                if lock.exists() and lock.read_text().strip() == str(first.pid):
                    break
                assert first.poll() is None, first.communicate()
                subprocess.run(["sleep", "0.1"], check=True)
            second = subprocess.run([EDGEWATCH, "run", "--config", str(config), "--once"],
                                    capture_output=True, text=True, timeout=60)
            # Another store dir, the same state dir: still refused.
            (tmp_path / "other").mkdir()
            other = write_config(tmp_path / "other", peer.port, target_port=closed_port())
            text = other.read_text().replace(str(tmp_path / "other" / "state"),
                                             str(tmp_path / "state"))
            other.write_text(text)
            third = subprocess.run([EDGEWATCH, "run", "--config", str(other), "--once"],
                                   capture_output=True, text=True, timeout=60)
        finally:
            rc, _, err = stop(first)
    assert rc == 0, err
    for proc in (second, third):
        assert proc.returncode == 2
        line, = proc.stderr.strip().splitlines()
        assert str(tmp_path / "state") in line and f"pid {first.pid}" in line
    assert not store_lines(tmp_path / "data", "checks")  # the refused process measured nothing
    # Once the holder is gone (even killed: flock dies with it), the dirs are free again.
    again = subprocess.run([EDGEWATCH, "run", "--config", str(config), "--once", "--quiet"],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr


def test_a_store_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, 53, target_port=closed_port())
    (tmp_path / "data").write_text("not a directory")
    proc = subprocess.run([EDGEWATCH, "run", "--config", str(config), "--once"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    line, = proc.stderr.strip().splitlines()
    assert "store" in line and str(tmp_path / "data") in line


def test_progress_is_one_line_per_cycle_without_a_terminal_and_rewritten_with_one(
        tmp_path: Path) -> None:
    with DnsPeer(loopback_addresses(2)) as peer:
        config = write_config(tmp_path, peer.port, target_port=closed_port(), interval="15m",
                              speed=900.0)  # one cycle a second
        piped = subprocess.run([EDGEWATCH, "run", "--config", str(config), "--cycles", "3",
                                "--no-align", "-v"], capture_output=True, text=True, timeout=120)
        assert piped.returncode == 0, piped.stderr
        assert "\r" not in piped.stderr
        lines = [x for x in piped.stderr.splitlines() if x.startswith("cycle ")]
        assert [x.split()[1] for x in lines] == ["1/3", "2/3", "3/3"]
        # -v after the subcommand: the cycle's INFO log lines are there.
        assert "INFO pipeline.cycle: cycle 3" in piped.stderr

        controller, terminal = pty.openpty()
        proc = subprocess.Popen([EDGEWATCH, "run", "--config", str(config), "--cycles", "2",
                                 "--no-align"], stdout=subprocess.PIPE, stderr=terminal)
        os.close(terminal)
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        proc.communicate(timeout=60)
        os.close(controller)
    assert proc.returncode == 0
    assert b"\rcycle 1/2" in seen and b"\rcycle 2/2" in seen


def test_verbose_is_accepted_after_every_subcommand() -> None:
    parser = build_parser()
    subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    names = list(subs[0].choices)
    assert {"run", "report", "check", "allowlist"} <= set(names)
    for name in names:
        options = {o for a in subs[0].choices[name]._actions for o in a.option_strings}
        assert {"-v", "--verbose"} <= options, name
    args = parser.parse_args(["-v", "run", "-v", "--once"])
    assert args.verbose + args.sub_verbose == 2


def test_two_processes_sharing_a_spool_dir_is_one_line(tmp_path: Path) -> None:
    """Different state and store, one Elasticsearch spool: the second refuses at once (the
    cluster address is a closed loopback port; nothing is sent anywhere)."""
    configs = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        config = write_config(tmp_path / name, 53, target_port=closed_port())
        config.write_text(config.read_text().replace('[sinks]\nenabled = ["ndjson"]\n', "")
                          + f'\n[elasticsearch]\nurl = "http://127.0.0.1:{closed_port()}"\n'
                          f'spool_dir = "{tmp_path / "spool"}"\n')
        configs.append(config)
    first = start_run(configs[0])
    try:
        lock = tmp_path / "spool" / ".edgewatch.lock"
        for _ in range(300):
            if lock.exists() and lock.read_text().strip() == str(first.pid):
                break
            assert first.poll() is None, first.communicate()
            subprocess.run(["sleep", "0.1"], check=True)
        second = subprocess.run([EDGEWATCH, "run", "--config", str(configs[1]), "--once"],
                                capture_output=True, text=True, timeout=60)
    finally:
        rc, _, err = stop(first)
    assert rc == 0, err
    assert second.returncode == 2
    line, = second.stderr.strip().splitlines()
    assert "spool dir" in line and str(tmp_path / "spool") in line and f"pid {first.pid}" in line


def test_a_signal_during_start_up_is_a_clean_stop(tmp_path: Path) -> None:
    """SIGTERM as soon as the process holds its locks (before the event loop, the sinks, the
    scheduler): remembered and honoured as a stop, never the default kill (exit -15)."""
    for attempt in range(5):
        folder = tmp_path / f"a{attempt}"
        folder.mkdir()
        config = write_config(folder, 53, target_port=closed_port())
        proc = start_run(config)
        lock = folder / "state" / ".edgewatch.lock"
        for _ in range(600):
            if lock.exists() and lock.read_text().strip() == str(proc.pid):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        rc, _, err = stop(proc)
        assert rc == 0, (attempt, err)
        assert "Traceback" not in err
