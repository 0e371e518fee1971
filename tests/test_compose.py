"""docker-compose.yml cannot be run here (no Docker engine), so its wiring is checked instead:
services and dependencies exist, the Elasticsearch image is the version the devstack node runs,
every command it gives names real subcommands and flags of our CLIs, and the pipeline image
installs the built wheel (tests/test_wheel.py shows that wheel works), nothing editable."""

from __future__ import annotations

import ast
import re
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


def _dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    return stages


def _shipped_sources() -> list[str]:
    """setup.py's SHIPPED: the repository files the build copies into pipeline/_data."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SHIPPED":
            return [source for source, _ in ast.literal_eval(node.value)]
    raise AssertionError("setup.py has no SHIPPED")


def test_pipeline_image_installs_the_built_wheel_and_nothing_editable() -> None:
    stages = _dockerfile_stages(ROOT / "Dockerfile")
    assert len(stages) >= 2, "a build stage makes the wheel, the last stage installs it"
    *builders, final = stages
    every = [args for stage in stages for word, args in stage if word == "RUN"]
    assert not [r for r in every if re.search(r"pip install[^&;]*(\s-e\s|--editable)", r)]
    built = [args for stage in builders for word, args in stage
             if word == "RUN" and ("pip wheel" in args or "-m build" in args)]
    assert built, "no stage builds a wheel"
    copied_in = " ".join(args for stage in builders for word, args in stage if word == "COPY")
    for needed in ("pyproject.toml", "setup.py", "pipeline", *_shipped_sources()):
        assert needed in copied_in, f"the build stage does not COPY {needed}"
    installs = [args for word, args in final if word == "RUN" and "pip install" in args]
    assert installs and all(".whl" in args for args in installs), installs
    for word, args in final:
        if word == "COPY":  # the product comes from the wheel: no source tree in the image
            assert args.startswith("--from=") or args.split()[0] == "config", args
    assert ("ENTRYPOINT", '["edgewatch"]') in final
