"""The command line: up prints a usable config, down leaves no process, truth prints JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import dns.message
import dns.query
from labtest_helpers import control_dirs_outside

from lab.procs import stragglers

ROOT = Path(__file__).resolve().parents[2]


def lab_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_up_config_down(tmp_path: Path) -> None:
    run_dir = tmp_path / "lab"
    up = lab_cli("up", "--scenario", "quick", "--speed", "3600", "--run-dir", str(run_dir))
    try:
        assert up.returncode == 0, up.stderr
        config = tomllib.loads((run_dir / "edgewatch.toml").read_text())
        assert config["observer"]["name"] == "lab-observer"
        assert config["schedule"] == {"interval": "15m", "jitter": "0s"}
        assert config["clock"]["speed"] == 3600.0 and config["clock"]["start"].endswith("Z")
        assert set(config["timeouts"]) == {"dns", "connect", "tls", "http"}
        assert Path(config["tls"]["ca_file"]).read_text().startswith("-----BEGIN CERTIFICATE")
        assert Path(config["netinfo"]["table"]).exists()
        assert [t["name"] for t in config["targets"]] == [
            "acme-v02.api.lab.test", "acme-staging-v02.api.lab.test"]
        assert all(set(r) >= {"name", "address", "port", "transport", "provider"}
                   for r in config["resolvers"])
        ecs = [r for r in config["resolvers"] if "client_subnet" in r]
        assert [r["client_subnet"] for r in ecs] == ["198.51.100.0/24"]
        for r in config["resolvers"]:
            if r["name"] in ("lab-google-a", "lab-cloudflare-a"):
                reply = dns.query.udp(dns.message.make_query("lab.test", "SOA"), r["address"],
                                      port=r["port"], timeout=2)
                assert reply.answer
        assert stragglers(str(run_dir.resolve()) + "/")
        outside = control_dirs_outside(run_dir)
        assert outside and all(d.is_dir() for d in outside)
        status = lab_cli("status", "--run-dir", str(run_dir))
        assert status.returncode == 0 and "7/7 processes alive" in status.stdout
    finally:
        down = lab_cli("down", "--run-dir", str(run_dir))
    assert down.returncode == 0, down.stderr
    assert stragglers(str(run_dir.resolve()) + "/") == []
    assert [d for d in control_dirs_outside(run_dir) if d.exists()] == []
    assert lab_cli("status", "--run-dir", str(run_dir)).returncode == 1


def test_truth_json_for_the_study() -> None:
    out = lab_cli("truth", "--scenario", "study-14d", "--interval", "15m", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert len(doc["resolvers"]) == 14
    google = doc["resolvers"]["lab-google-a"]["targets"]["acme-v02.api.lab.test"]
    assert google["polls"] == 1344 and google["reuse_count"] == 1
    assert doc["edges"]["127.60.0.21"] == "tcp.timeout"


def test_bad_scenario_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nstart = 2026-03-02T00:00:00Z\nduration = "1d"\nnope = 1\n')
    out = lab_cli("truth", "--scenario", str(bad))
    assert out.returncode == 2 and "scenario.nope: unknown key" in out.stderr


def test_help_explains() -> None:
    out = lab_cli("--help")
    assert out.returncode == 0 and "edgewatch-lab down" in out.stdout
