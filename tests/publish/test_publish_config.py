"""``[publish]`` validated at start, and ``allowlist serve``'s one-line errors and --once."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
BASE = """
[[targets]]
name = "acme.example"
[[resolvers]]
name = "r1"
address = "127.0.0.1"
"""


def write(tmp_path: Path, publish: str) -> Path:
    path = tmp_path / "edgewatch.toml"
    path.write_text(BASE + f'[state]\ndir = "{tmp_path / "state"}"\n'
                    f'[store]\ndir = "{tmp_path / "data"}"\n' + publish)
    return path


@pytest.mark.parametrize(("publish", "key", "reason"), [
    ('listen = "127.0.0.1"', "publish.listen", "port 0 is out of range"),
    ('listen = "localhost:80"', "publish.listen", "is not an IP address"),
    ('dir = "x"\nby = "ip6"', "publish.by", "must be one of ip, prefix24, prefix"),
    ('dir = "x"\nhold = "2d"', "publish.window", "must be at least publish.hold"),
    ('dir = "x"\nfloor = 1.5', "publish.floor", "a share in 0..1"),
    ('dir = "x"\ntargets = ["other.example"]', "publish.targets", "not a configured target"),
    ('nft_set = "a-b"', "publish.nft_set", "is not allowed"),
    ('dir = "x"\nbasic_user = "fw"', "publish.basic_user", "go together"),
    ('dir = "x"\ntoken_file = "/nonexistent/token"', "publish.token_file", "not a readable"),
    ('hold = "1h"', "publish", "publishes nowhere"),
    ('dir = "x"\nrefresh = "1ms"', "publish.refresh", "less than 0.1s real"),
    ('dir = "x"\nlisten_on = "1"', "publish.listen_on", "unknown key"),
])
def test_bad_publish_settings_are_named(tmp_path: Path, publish: str, key: str,
                                        reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "[publish]\n" + publish + "\n"), env={})
    assert any(k == key and reason in why for k, why in err.value.problems), err.value.problems


def test_the_examples_publish_section_parses_when_uncommented(tmp_path: Path) -> None:
    text = (ROOT / "config" / "edgewatch.example.toml").read_text()
    block = re.search(r"^# \[publish\].*?(?=^\s*$)", text, re.M | re.S)
    assert block is not None
    lines = [re.sub(r"^# ?", "", ln).split("  #")[0] for ln in block.group(0).splitlines()]
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    body = "\n".join(lines).replace("/etc/edgewatch/publish.token", str(token)).replace(
        "/var/lib/edgewatch/publish", str(tmp_path / "publish"))
    cfg = load_config(write(tmp_path, body + "\n"), env={})
    assert cfg.publish is not None and cfg.publish.hold_s == 6 * 3600
    assert cfg.publish.listen == ("127.0.0.1", 8099) and cfg.publish.nft_set == "edgewatch_allow"
    # and an environment override reaches it
    env = {"EDGEWATCH_PUBLISH__HOLD": '"2h"'}
    assert load_config(write(tmp_path, body + "\n"), env=env).publish.hold_s == 7200


def serve(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "allowlist", "serve", "--config",
                           str(config), *args], capture_output=True, text=True, timeout=60)


def test_serve_without_a_publish_section_is_one_line(tmp_path: Path) -> None:
    proc = serve(write(tmp_path, ""))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "no [publish] section" in proc.stderr


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = serve(write(tmp_path, f'[publish]\nlisten = "127.0.0.1:{port}"\n'))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"publish.listen 127.0.0.1:{port}" in proc.stderr and "in use" in proc.stderr


def test_once_exits_1_without_evidence_and_writes_no_empty_list(tmp_path: Path) -> None:
    proc = serve(write(tmp_path, f'[publish]\ndir = "{tmp_path / "lists"}"\n'), "--once")
    assert proc.returncode == 1, proc.stderr
    assert "acme.example: no successful, verified check yet" in proc.stdout
    assert "evidence unreadable" in proc.stdout  # the store does not exist yet
