"""A pytest fixture factory for a running lab, for lab tests and every later integration test.

    # conftest.py
    from lab.testing import lab_fixture
    lab = lab_fixture("quick", speed=900)

The fixture is session-scoped: the lab starts once (well under a second here) and is always torn
down, whatever the tests did. If a daemon cannot start, the fixture raises and every test using it
fails loudly; nothing is skipped. Each session gets its own run folder and the first free address
plan, so concurrent test sessions on one machine do not collide.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.stack import LabStack


def lab_fixture(scenario: str = "quick", speed: float = 900.0, scope: str = "session",
                name: str = "lab", **kwargs: Any) -> Callable[..., Any]:
    """Return a pytest fixture (assign it to a module-level name) yielding a started LabStack."""

    @pytest.fixture(scope=scope, name=name)  # type: ignore[call-overload]
    def _lab() -> Iterator[LabStack]:
        with tempfile.TemporaryDirectory(prefix="edgewatch-lab-") as tmp:
            stack = LabStack(scenario, speed=speed, run_dir=Path(tmp) / "lab", **kwargs)
            try:
                stack.start()
                yield stack
            finally:
                stack.stop()

    return _lab
