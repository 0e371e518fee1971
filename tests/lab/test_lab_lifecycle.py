"""Start/stop hygiene: a failed start and a SIGTERMed foreground lab leave no process behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labtest_helpers import control_dirs_outside

from lab.daemons import unbound
from lab.procs import stragglers
from lab.stack import LabError, LabStack

ROOT = Path(__file__).resolve().parents[2]


def test_failed_start_raises_loudly_and_cleans_up(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unbound, "BINARY", "/bin/false")  # the daemon "cannot start"
    run_dir = tmp_path / "lab"
    stack = LabStack("quick", speed=3600, run_dir=run_dir)
    with pytest.raises(LabError, match="exited during start"):
        stack.start()
    assert stragglers(str(run_dir.resolve()) + "/") == []
    outside = control_dirs_outside(run_dir)
    assert outside, "the run folder is short: no control folder outside it to check"
    assert [d for d in outside if d.exists()] == []


def test_foreground_lab_stops_everything_on_sigterm(tmp_path: Path) -> None:
    run_dir = (tmp_path / "lab").resolve()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "up", "--scenario", "quick", "--run-dir", str(run_dir),
         "--foreground", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the config path, printed once ready
        assert line.strip() == str(run_dir / "edgewatch.toml"), proc.stderr.read()
        assert len(stragglers(str(run_dir) + "/")) >= 7
        outside = control_dirs_outside(run_dir)
        assert outside and all(d.is_dir() for d in outside)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 5
    while stragglers(str(run_dir) + "/") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stragglers(str(run_dir) + "/") == []
    assert [d for d in outside if d.exists()] == []
