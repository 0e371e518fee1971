"""The scenario clock: scenario_now = start + (real_now - anchor) * speed.

One tiny value object shared (through the run folder's state file) by the authoritative server,
the shims, the ground truth and the edgewatch config, so that "the poll at 10:15 scenario time"
means the same real instant to all of them.

The pipeline reads the same three numbers from its config into its own ``pipeline/clock.py``
(datetimes rather than epoch seconds). The two are kept apart on purpose — the lab imports
nothing from the system it scores, and the pipeline's wheel does not contain lab/ — and
``tests/pipeline/test_clock_conformance.py`` holds them to the same answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from lab.timeparse import from_epoch, to_epoch


@dataclass(frozen=True)
class ScenarioClock:
    """Maps real unix time to scenario time; speed 1 is real time, 3600 is an hour per second."""

    start: float  # scenario epoch seconds at `anchor`
    anchor: float  # real unix seconds
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be positive")

    def scenario_at(self, real: float) -> float:
        return self.start + (real - self.anchor) * self.speed

    def real_at(self, scenario: float | datetime) -> float:
        if isinstance(scenario, datetime):
            scenario = to_epoch(scenario)
        return self.anchor + (scenario - self.start) / self.speed

    def now(self) -> float:
        """Scenario epoch seconds now."""
        return self.scenario_at(time.time())

    def now_dt(self) -> datetime:
        return from_epoch(self.now())

    def scale_ttl(self, ttl: int) -> int:
        """A scenario TTL as real seconds a resolver should cache it: floor(ttl / speed).

        Real resolvers count TTLs in real seconds; dividing keeps "cached for 20 s" meaning
        20 scenario seconds. Under strong acceleration this rounds to 0, i.e. no caching, which
        is also what a 20 s TTL means to an observer polling every 15 minutes.
        """
        return max(0, min(2**31 - 1, int(ttl // self.speed)))

    def scale_seconds(self, seconds: float) -> float:
        """A scenario duration in real seconds."""
        return seconds / self.speed

    def to_dict(self) -> dict[str, float]:
        return {"start": self.start, "anchor": self.anchor, "speed": self.speed}

    @classmethod
    def from_dict(cls, raw: dict[str, float]) -> ScenarioClock:
        return cls(start=float(raw["start"]), anchor=float(raw["anchor"]),
                   speed=float(raw["speed"]))

    @classmethod
    def starting_now(cls, start: float | datetime, speed: float) -> ScenarioClock:
        if isinstance(start, datetime):
            start = to_epoch(start)
        return cls(start=float(start), anchor=time.time(), speed=float(speed))
