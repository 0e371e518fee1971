"""The plausible window: which stored timestamps a report believes.

One document stamped by a clock that jumped to 2031 (or back to 1970 after a dead RTC battery)
would otherwise stretch fifteen seconds of evidence to "feasible over 1642.2 days". A report
therefore leaves out checks dated

* before ``FLOOR`` (2020-01-01, before any edgewatch document, after the usual reset dates
  1970-01-01 and 2000-01-01), unless ``--from`` names an earlier start, and
* from the end of the UTC day after *now* on (so at least ``SKEW``, one day, and at most two
  days ahead; a whole day so that two reports made minutes apart agree), unless ``--to``
  names the end, where *now* is the later of
  the wall clock and the config's scenario clock: the lab's accelerated clock may legitimately
  run ahead of the wall clock (a 14-day scenario at 3600x started at a future ``--start-at``),
  and the config that drove the probe says by how much.

Run summaries count only when their whole span (``edgewatch.run.start`` …
``edgewatch.run.last_seen``) lies inside.
What was left out is counted and said in the report, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pipeline.report.filters import Filters

if TYPE_CHECKING:
    from pipeline.config import Clock

FLOOR = datetime(2020, 1, 1, tzinfo=UTC)
SKEW = timedelta(days=1)


def clock_now(clock: Clock | None, real: float | None = None) -> datetime:
    """The later of the wall clock and the scenario clock (if a config has one)."""
    real = time.time() if real is None else real
    wall = datetime.fromtimestamp(real, UTC)
    if clock is None:
        return wall
    scenario = clock.start + timedelta(seconds=(real - clock.anchor) * clock.speed)
    return max(wall, scenario.astimezone(UTC))


def ceiling(now: datetime) -> datetime:
    """The exclusive upper bound: midnight UTC at the end of the day after ``now``."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + SKEW + timedelta(days=1)


def plausible(filters: Filters, now: datetime | None = None) -> Filters:
    """``filters`` narrowed to the plausible window; an explicit ``--from``/``--to`` wins."""
    now = now or datetime.now(UTC)
    return dataclasses.replace(
        filters,
        not_before=None if filters.start is not None else FLOOR,
        not_after=None if filters.end is not None else ceiling(now),
    )
