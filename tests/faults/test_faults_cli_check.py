"""``edgewatch check`` with bad input: one line naming the argument and the reason, exit 2.

And exit 1 when no resolver answered with an address. Only loopback is asked (a closed UDP port
on 127.0.0.1), so nothing leaves the machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from faults_config_helpers import closed_udp_port, edgewatch, one_line_error, write_config

from lab import pki

LONG_LABEL = "a" * 64 + ".lab.test"
LONG_NAME = ".".join(["abcdefghi"] * 30) + ".test"


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pki.generate(tmp_path_factory.mktemp("pki"), ["api.lab.test"], "wrong.lab.test").ca


@pytest.mark.parametrize(("args", "expected"), [
    (["-p", "0", "api.lab.test"], "edgewatch check: --port 0: must be 1..65535"),
    (["-p", "70000", "api.lab.test"], "edgewatch check: --port 70000: must be 1..65535"),
    ([""], "edgewatch check: HOST: must not be empty"),
    (["a..b"], "edgewatch check: HOST: 'a..b' has an empty label"),
    ([LONG_LABEL], "has a label of 64 octets; a DNS label has at most 63"),
    ([LONG_NAME], "is 304 octets long; a DNS name has at most 253"),
    (["under_score.lab.test"], "characters other than letters, digits and '-'"),
    (["127.0.0.1"], "edgewatch check: HOST: '127.0.0.1' is an IP address"),
    (["-r", "127.0.0.1:70000", "api.lab.test"],
     "edgewatch check: --resolver '127.0.0.1:70000': port 70000 is out of range 1..65535"),
    (["-r", "resolver.lab.test", "api.lab.test"], "is not an IP address"),
    (["-p", "https", "api.lab.test"], "edgewatch check: --port https: must be 1..65535"),
    (["--timeout", "0", "api.lab.test"], "edgewatch check: --timeout 0: must be a number"),
    (["--timeout", "nan", "api.lab.test"], "edgewatch check: --timeout nan: must be a number"),
    (["--timeout", "soon", "api.lab.test"], "edgewatch check: --timeout soon: must be a number"),
    (["--http-path", "/a b", "api.lab.test"], "--http-path '/a b': must start with / and hold"),
    (["--ca-file", "missing.pem", "api.lab.test"],
     "edgewatch check: --ca-file: missing.pem does not exist"),
])
def test_bad_check_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str],
                                                expected: str) -> None:
    result = edgewatch("check", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in one_line_error(result)
    assert result.stdout == ""  # refused before anything was asked


def test_ca_file_that_is_not_a_certificate(tmp_path: Path, ca_pem: Path) -> None:
    (tmp_path / "notes.pem").write_text("hello\n")
    result = edgewatch("check", "--ca-file", "notes.pem", "api.lab.test", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_error(result) == ("edgewatch check: --ca-file: notes.pem is not a PEM "
                                      "certificate (no BEGIN CERTIFICATE block)")


def test_every_resolver_failing_exits_1(tmp_path: Path, ca_pem: Path) -> None:
    port = closed_udp_port()
    result = edgewatch("check", "-r", f"127.0.0.1:{port}", "--timeout", "0.5",
                       "--ca-file", str(ca_pem), "api.lab.test", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"127.0.0.1:{port}" in result.stdout and "dns." in result.stdout
    assert "no resolver answered api.lab.test A with an address" in result.stderr


def test_resolvers_from_the_config_all_failing_exit_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, '\n[timeouts]\ndns = "0.5s"\n')
    result = edgewatch("check", "-c", str(config), "api.lab.test", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "loopback" in result.stdout


def test_check_refuses_a_bad_config_in_one_pass(tmp_path: Path) -> None:
    config = write_config(tmp_path, '\n[rdns]\nresolver = "127.0.0.1:70000"\n')
    result = edgewatch("check", "-c", str(config), "api.lab.test", cwd=tmp_path)
    assert result.returncode == 2
    assert "rdns.resolver: port 70000 is out of range 1..65535" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_documents_the_exit_codes(tmp_path: Path) -> None:
    out = edgewatch("check", "--help", cwd=tmp_path).stdout
    assert "exit status:" in out and "  1  no resolver answered" in out and "  2  bad input" in out
