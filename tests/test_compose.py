"""docker-compose.yml cannot be run here (no Docker engine), so its wiring is checked instead:
services and dependencies exist, the Elasticsearch image is the version the devstack node runs,
and every command it gives names real subcommands and flags of our CLIs."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from devstack.node import ES_VERSION

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _help(module: str, *words: str) -> str:
    proc = subprocess.run([sys.executable, "-m", module, *words, "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_services_and_dependencies() -> None:
    services = COMPOSE["services"]
    assert {"elasticsearch", "kibana", "setup", "lab", "pipeline"} <= set(services)
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
        mode = svc.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.split(":", 1)[1] in services
        if "build" in svc:
            build = svc["build"]
            dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) \
                else "Dockerfile"
            assert (ROOT / dockerfile).is_file(), dockerfile


def test_elastic_images_match_the_devstack_version() -> None:
    for name in ("elasticsearch", "kibana"):
        assert COMPOSE["services"][name]["image"].endswith(f":{ES_VERSION}")


def test_commands_name_real_subcommands_and_flags() -> None:
    services = COMPOSE["services"]
    lab_help = _help("lab", "up")
    for flag in [w for w in services["lab"]["command"] if w.startswith("--")]:
        assert flag in lab_help, flag
    assert services["lab"]["command"][0] == "up"
    for svc in ("pipeline", "pipeline-real"):
        cmd = services[svc]["command"]
        text = _help("pipeline", cmd[0])
        for flag in [w for w in cmd if w.startswith("--")]:
            assert flag in text, (svc, flag)
    setup = services["setup"]["command"][0]
    for part in setup.split("&&"):
        words = shlex.split(part.replace("$$", "$"))
        assert words[0] == "edgewatch"
        sub = [w for w in words[1:] if not w.startswith("-") and not w.startswith("$")]
        text = _help("pipeline", *sub)
        for flag in [w for w in words if w.startswith("--")]:
            assert flag in text, (part, flag)
