"""The daemon guard sees a descendant by its process name, and only descendants."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from daemon_guard import descendant_daemons


def test_a_child_named_like_a_resolver_is_found(tmp_path: Path) -> None:
    fake = tmp_path / "unbound"  # /bin/sleep under a daemon's name: nothing listens anywhere
    fake.symlink_to("/bin/sleep")
    child = subprocess.Popen([str(fake), "30"])
    other = subprocess.Popen(["/bin/sleep", "30"])  # not its parent: must not see it
    try:
        deadline = time.monotonic() + 5
        found: dict[int, str] = {}
        while child.pid not in found and time.monotonic() < deadline:
            found = descendant_daemons(os.getpid())
            time.sleep(0.01)
        assert found.get(child.pid) == "unbound"
        assert child.pid not in descendant_daemons(other.pid)
    finally:
        for proc in (child, other):
            proc.kill()
            proc.wait()
    assert child.pid not in descendant_daemons(os.getpid())
