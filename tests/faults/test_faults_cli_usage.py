"""A usage error of any subcommand is one line naming the argument, and exit status 2."""

from __future__ import annotations

import pytest

from pipeline.cli import main


@pytest.mark.parametrize("argv, names", [
    (["nosuch"], "COMMAND"),
    (["run", "--cycles", "x"], "--cycles"),
    (["report", "--from", "2026-13-01"], "--from"),
    (["allowlist", "--coverage"], "--coverage"),
    (["report", "--format", "pdf"], "--format"),
])
def test_a_usage_error_is_one_line(argv: list[str], names: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    line, = err.strip().splitlines()
    assert names in line and "--help" in line and "usage:" not in line
