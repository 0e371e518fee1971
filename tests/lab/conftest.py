"""One running lab for the session: quick scenario at 900x (a 15-minute poll every real second).

900x keeps the 7.5-minute distance between the poll grid and any scenario change at half a real
second, so a poll delayed by a busy shared machine still lands in the right scenario slot.

Tests using ``lab`` are marked ``integration`` by tests/conftest.py from that fixture; the ones
below start a lab of their own (a ``LabStack`` or ``edgewatch-lab up`` in a subprocess), which
no fixture shows, so they are named here (tests/daemon_guard.py fails a ``-m "not integration"``
run in which an unmarked test starts a resolver daemon).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.testing import lab_fixture

lab = lab_fixture("quick", speed=900.0)

HERE = Path(__file__).resolve().parent
STARTS_A_LAB = {
    "test_lab_study_live.py": None,  # the whole module
    "test_lab_lifecycle.py": None,
    "test_lab_cli.py": {"test_up_config_down"},
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path)
        if path.parent != HERE or path.name not in STARTS_A_LAB:
            continue
        tests = STARTS_A_LAB[path.name]
        if tests is None or getattr(item, "originalname", item.name) in tests:
            item.add_marker(pytest.mark.integration)
