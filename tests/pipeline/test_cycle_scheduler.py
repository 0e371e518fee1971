"""The scheduler's rules that need no scheduler: lateness against the grid, the shutdown grace."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.config import Config, Resolver, Schedule, Target, Timeouts
from pipeline.cycle import cycle_budget
from pipeline.scheduler import FLUSH_MARGIN_S, _too_late, shutdown_grace

SLOT = datetime(2026, 3, 1, 12, 15, tzinfo=UTC)  # on a 15-minute grid


class At:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t


@pytest.mark.parametrize(("offset_s", "late"), [
    (0.0, False),      # on its slot
    (299.0, False),    # within the limit
    (300.0, False),    # at the limit: still this slot's poll
    (301.0, True),     # past the limit: no longer the poll of its slot
    (449.0, True),     # nearer this slot than the next, and too late for it
    (451.0, False),    # nearer the next slot: early for it, not late
    (-120.0, False),   # a tick before its slot (jitter) is not late
])
def test_a_cycle_is_too_late_past_misfire_grace_plus_jitter(offset_s: float, late: bool) -> None:
    clock = At(SLOT + timedelta(seconds=offset_s))
    assert _too_late(clock, 900.0, 300.0) is late  # type: ignore[arg-type]


def test_the_shutdown_grace_is_the_cycle_budget_plus_the_flush_margin() -> None:
    cfg = Config(observer_name="obs", observer_geo={}, targets=(Target("a.test"),),
                 resolvers=(Resolver("r1", "127.0.0.1"),), schedule=Schedule(),
                 timeouts=Timeouts(dns=1.0, connect=1.0, tls=1.0, http=1.0))
    assert shutdown_grace(cfg) == cycle_budget(cfg) + FLUSH_MARGIN_S
    slower = replace(cfg, timeouts=Timeouts(dns=2.0, connect=1.0, tls=1.0, http=1.0))
    assert shutdown_grace(slower) > shutdown_grace(cfg)  # follows the configured timeouts
