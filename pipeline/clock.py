"""Real time, or the lab's accelerated scenario time.

A 14-day study in the lab runs in minutes: the authoritative server and the pipeline agree on
``scenario = start + (real - anchor) * speed``. Everything that stamps a document asks the clock;
everything that waits (the scheduler, timeouts) waits in real seconds.

The lab has its own copy of the formula (``lab/clock.py``, float epoch seconds): the lab is not
in the wheel and imports nothing from the pipeline, since it is the independent ground truth
runs are scored against. ``tests/pipeline/test_clock_conformance.py`` feeds both the same
start, anchor, speed and instants and requires the same answers; change them together.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class ScenarioClock:
    start: datetime
    anchor: float
    speed: float = 1.0

    def now(self) -> datetime:
        return self.at_real(time.time())

    def at_real(self, real: float) -> datetime:
        return self.start + timedelta(seconds=(real - self.anchor) * self.speed)

    def real_at(self, scenario: datetime) -> float:
        return self.anchor + (scenario - self.start).total_seconds() / self.speed

    def real_seconds(self, scenario_seconds: float) -> float:
        """How long a scenario span lasts in real time."""
        return scenario_seconds / self.speed

    def next_boundary(self, interval_s: float, after: datetime | None = None) -> datetime:
        """The next instant on the interval grid (aligned to the Unix epoch), strictly after."""
        after = after or self.now()
        ts = after.timestamp()
        nxt = math.floor(ts / interval_s + 1e-9) * interval_s + interval_s
        return datetime.fromtimestamp(nxt, UTC)


def real_clock() -> ScenarioClock:
    """The identity clock: scenario time is real time."""
    now = time.time()
    return ScenarioClock(start=datetime.fromtimestamp(now, UTC), anchor=now, speed=1.0)
