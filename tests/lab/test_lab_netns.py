"""The dual-stack lab's network namespace is always removed: after stop, a failed start, SIGTERM,
and (as an orphan) after its creator was killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab import netns
from lab.procs import stragglers
from lab.stack import LabError, LabStack

# Every test here starts the lab's resolvers (in a namespace, or in a subprocess).
pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def mine() -> list[str]:
    """This process's lab namespaces."""
    return sorted(p.name for p in netns.NETNS_DIR.glob(f"{netns.PREFIX}{os.getpid()}-*"))


def test_stop_removes_the_namespace_and_everything_in_it(tmp_path: Path) -> None:
    lab = LabStack("dualstack", speed=900, run_dir=tmp_path / "lab")
    with lab:
        name = lab.netns
        assert name is not None and netns.exists(name) and netns.occupied(name)
        assert lab.netns_setup_s is not None
        assert lab.exec_prefix == ["ip", "netns", "exec", name]
    assert not netns.exists(name)
    assert stragglers(str(tmp_path / "lab") + "/") == []


def test_a_failed_start_removes_the_namespace(tmp_path: Path) -> None:
    before = mine()
    with pytest.raises(LabError):
        LabStack("dualstack", speed=900, run_dir=tmp_path / "lab", ready_timeout=0.0).start()
    assert mine() == before
    assert stragglers(str(tmp_path / "lab") + "/") == []


def test_sigterm_removes_the_namespace(tmp_path: Path) -> None:
    run_dir = tmp_path / "lab"
    script = ("import sys, time\nfrom lab.stack import LabStack\n"
              f"with LabStack('dualstack', speed=900, run_dir={str(run_dir)!r}) as lab:\n"
              "    print(lab.netns, flush=True)\n    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        name = proc.stdout.readline().strip()
        assert name.startswith(netns.PREFIX) and netns.exists(name)
        # `edgewatch-lab exec` runs a command where the IPv6 edges are
        inside = subprocess.run([sys.executable, "-m", "lab", "exec", "--run-dir", str(run_dir),
                                 "--", "ip", "-6", "addr", "show", "dev", "lo"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout
        assert "fd00:60::10/128" in inside
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert not netns.exists(name)
    assert stragglers(str(run_dir) + "/") == []


def test_orphans_are_reaped_and_live_namespaces_kept() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = f"{netns.PREFIX}{dead.pid}-0f0f0f"
    live = f"{netns.PREFIX}{os.getpid()}-a1a1a1"
    try:
        for name in (orphan, live):
            netns.create(name, ["fd00:60::10"])
        reaped = netns.reap_orphans()
        assert orphan in reaped and not netns.exists(orphan)
        assert live not in reaped and netns.exists(live)
    finally:
        for name in (orphan, live):
            netns.delete(name)
    assert not netns.exists(live)

