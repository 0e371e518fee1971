"""Two processes on one spool: the second is refused with one line naming the dir and holder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.sinks.spool import Spool, SpoolError, SpoolLocked, opened

HOLDER = """
import sys, time
from pipeline.sinks.spool import opened
with opened(sys.argv[1]):
    print("HELD", flush=True)
    sys.stdin.readline()
"""


def test_a_second_process_is_refused_with_the_dir_and_the_holders_pid(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(spool_dir)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "HELD"
        with pytest.raises(SpoolLocked) as caught:
            Spool(spool_dir).open()
        message = str(caught.value)
        assert isinstance(caught.value, SpoolError)  # what callers already catch
        assert "\n" not in message
        assert str(spool_dir) in message
        assert f"pid {holder.pid}" in message
        assert caught.value.holder == holder.pid
        assert "spool_dir" in message  # what to do about it
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    with opened(spool_dir) as spool:  # the holder is gone: the lock went with it
        assert spool.is_empty()


def test_the_lock_is_per_open_not_per_process(tmp_path: Path) -> None:
    with opened(tmp_path), pytest.raises(SpoolLocked, match="in use by pid"):
        Spool(tmp_path).open()
