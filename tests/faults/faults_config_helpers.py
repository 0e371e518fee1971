"""Helpers of the config and CLI fault tests: a temporary config, the CLI as a user runs it.

Every config written here points only at loopback addresses, and every test that runs the CLI
expects it to stop at start (exit 2) or to talk only to closed ports on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EDGEWATCH = Path(sys.executable).parent / "edgewatch"

BASE_CONFIG = """\
[observer]
name = "faults-config"

[[targets]]
name = "api.lab.test"

[[resolvers]]
name = "loopback"
address = "127.0.0.1"
port = {port}
"""


def closed_udp_port() -> int:
    """A loopback UDP port that nothing listens on (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, extra: str = "", port: int | None = None) -> Path:
    """A valid config in ``folder`` plus ``extra`` TOML; state and store inside ``folder``."""
    path = folder / "edgewatch.toml"
    path.write_text(BASE_CONFIG.format(port=port or closed_udp_port())
                    + f'\n[state]\ndir = "{folder / "state"}"\n'
                    + f'\n[store]\ndir = "{folder / "data"}"\n' + extra)
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without edgewatch and cluster variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EDGEWATCH_", "ES_", "KIBANA_"))}
    env.update(extra)
    return env


def edgewatch(*args: str, cwd: Path, env: dict[str, str] | None = None,
              wrap: list[str] | None = None, timeout: float = 60
              ) -> subprocess.CompletedProcess[str]:
    """Run the installed ``edgewatch`` in ``cwd`` (which holds no edgewatch.toml by default)."""
    return subprocess.run([*(wrap or []), str(EDGEWATCH), *args], cwd=cwd,
                          env=env if env is not None else clean_env(), capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused start; fails on a traceback or several lines."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def config_problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The problems: one line ``edgewatch: FILE: KEY: REASON`` when there is one, else the lines
    under ``edgewatch: FILE: invalid configuration:``."""
    assert "Traceback" not in result.stderr, result.stderr
    head, *lines = result.stderr.strip().splitlines()
    if not lines:
        prefix = "edgewatch: "
        assert head.startswith(prefix), result.stderr
        _file, sep, problem = head[len(prefix):].partition(": ")
        assert sep and problem, result.stderr
        return [problem]
    assert head.endswith("invalid configuration:"), result.stderr
    return [line.strip() for line in lines]


def read_only_wrapper(folder: Path) -> list[str]:
    """How to run a command that sees ``folder`` read-only.

    As root, permission bits do not stop writes, so the folder is bind-mounted read-only in a
    private mount namespace (``unshare -m``); otherwise it is made read-only with chmod.
    """
    if os.geteuid() == 0:
        script = (f'mount --bind "{folder}" "{folder}" && '
                  f'mount -o remount,bind,ro "{folder}" && exec "$@"')
        return ["unshare", "-m", "sh", "-c", script, "sh"]
    folder.chmod(0o555)
    return []
