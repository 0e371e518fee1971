"""A configuration the cycle would trip on stops ``edgewatch run`` at start: exit 2, every
problem on its own line with its key (or its environment variable), no traceback, no cycle.

Configs point only at 127.0.0.1; none of these runs gets as far as sending anything.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from es.docgen import check_records
from faults_config_helpers import (
    clean_env,
    config_problems,
    edgewatch,
    one_line_error,
    read_only_wrapper,
    write_config,
)

from pipeline.sinks.ndjson import NdjsonSink

BAD = """
[schedule]
interval = "1ms"

[clock]
start = "2026-03-02T00:00:00Z"
anchor = 1.8e9
speed = 1e12

[limits]
dns_retries = -5

[rdns]
resolver = "127.0.0.1:0"

[sinks]
enabled = []

[[targets]]
name = "{long}.lab.test"

[[targets]]
name = "-bad-.com"

[[targets]]
name = "127.0.0.2"

[[resolvers]]
name = "doh"
address = "127.0.0.1"
transport = "doh"
url = "not a url"
"""


def test_every_problem_at_once_one_per_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, BAD.format(long="a" * 64))
    result = edgewatch("run", "--once", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    lines = config_problems(result)
    keys = [line.split(":", 1)[0] for line in lines]
    assert keys == ["clock.speed", "schedule.interval", "limits.dns_retries", "rdns.resolver",
                    "sinks.enabled", "targets[1].name", "targets[2].name", "targets[3].name",
                    "resolvers[1].url"]
    assert not (tmp_path / "state").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize(("env", "expected"), [
    ({"EDGEWATCH_LIMITS__CONCURRENCY": "abc"},
     "EDGEWATCH_LIMITS__CONCURRENCY=abc: must be an integer, got a string "
     "(overrides limits.concurrency)"),
    ({"EDGEWATCH_TARGETS__PORT": "70000"},
     "EDGEWATCH_TARGETS__PORT=70000: must be 1..65535, got 70000 (overrides targets[*].port)"),
    ({"ES_URL": "http://127.0.0.1:99999"},
     "ES_URL: port 99999 is out of range 1..65535 (overrides elasticsearch.url)"),
    ({"ES_URL": "http://127.0.0.1:9200", "ES_CA_FILE": "/nonexistent/ca.pem"},
     "ES_CA_FILE: /nonexistent/ca.pem does not exist"),
])
def test_an_override_error_names_the_variable(tmp_path: Path, env: dict[str, str],
                                              expected: str) -> None:
    config = write_config(tmp_path)
    result = edgewatch("run", "--once", "-c", str(config), cwd=tmp_path, env=clean_env(**env))
    assert result.returncode == 2
    assert config_problems(result) == [expected]


def test_state_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a folder\n")
    config = write_config(tmp_path)
    result = edgewatch("run", "--once", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert config_problems(result) == [f"state.dir: {tmp_path / 'state'} is a file, not a "
                                       "directory"]


def test_store_and_state_on_a_read_only_folder(tmp_path: Path) -> None:
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    config = tmp_path / "edgewatch.toml"
    config.write_text(write_config(frozen).read_text())  # state and store inside frozen/
    (frozen / "edgewatch.toml").unlink()
    try:
        result = edgewatch("run", "--once", "-c", str(config), cwd=tmp_path,
                           wrap=read_only_wrapper(frozen))
    finally:
        frozen.chmod(0o755)
    assert result.returncode == 2, result.stderr
    lines = config_problems(result)
    assert [line.split(":", 1)[0] for line in lines] == ["state.dir", "store.dir"]
    assert all("cannot be created" in line for line in lines), lines
    assert all("read-only file system" in line or "not writable" in line for line in lines)
    assert not (frozen / "state").exists()


@pytest.mark.parametrize(("content", "expected"), [
    (b"1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n\x89PNG\r\n\x1a\n\x00\xff\xfe\n",
     ":2: not UTF-8 text"),
    (b"1.0.0.0\t1.0.0.255\t13335\tUS\tX\n1.0.1.0,1.0.1.255,13335\n",
     ":2: expected at least 3 tab-separated columns"),
    (b"# header\n\n1.0.0.0\t1.0.0.255\tAS13335\tUS\tX\n", ":3: AS number 'AS13335'"),
    (b"1.0.0.0\t1.0.0.255\t13335\tUS\tX\nstart\tend\tasn\n", ":2: 'start' does not appear"),
])
def test_a_netinfo_table_that_is_not_a_table(tmp_path: Path, content: bytes,
                                             expected: str) -> None:
    table = tmp_path / "ip2asn.tsv"
    table.write_bytes(content)
    config = write_config(tmp_path, f'\n[netinfo]\ntable = "{table}"\n')
    result = edgewatch("run", "--once", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    line = one_line_error(result)
    assert line.startswith(f"edgewatch: netinfo.table: {table}:") and expected in line, line
    check = edgewatch("check", "-c", str(config), "api.lab.test", cwd=tmp_path)
    assert check.returncode == 2 and expected in one_line_error(check)


def _store_checks(directory: Path, count: int) -> None:
    """``count`` check documents written by the production ndjson sink."""
    sink = NdjsonSink(directory)

    async def write() -> None:
        await sink.open()
        await sink.write(check_records(count))
        await sink.close()

    asyncio.run(write())


def test_report_reads_a_store_on_a_read_only_disk(tmp_path: Path) -> None:
    """The write checks are for the commands that write: report over a read-only store runs."""
    frozen = tmp_path / "frozen"
    (frozen / "data").mkdir(parents=True)
    _store_checks(frozen / "data", 50)
    config = write_config(frozen)
    try:
        result = edgewatch("report", "-c", str(config), "--format", "json", cwd=tmp_path,
                           wrap=read_only_wrapper(frozen))
    finally:
        frozen.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert "state.dir" not in result.stderr and "read-only" not in result.stderr
    assert f"ndjson store {frozen / 'data'}" in result.stdout
