"""``probe.deadlines``: one loop timer for every check's phase bound, held to a model.

The model is the rule the timer per check kept: a check that is not finished expires as soon
as the clock reaches its current phase end, and never otherwise. Hypothesis drives random
checks through random phase moves (earlier and later), finishes and clock advances on a manual
clock (a loop whose ``call_at`` runs its callbacks in time order when the clock is advanced: the
clock is the one thing a real loop cannot be made to step). A real loop runs the probe's
phase-bound tests (tests/faults/test_faults_tls_handshake.py).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.probe.deadlines import Deadlines


class ManualClockLoop:
    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self.seq = 0  # also: how many timers were set

    def time(self) -> float:
        return self.now

    def is_closed(self) -> bool:
        return False

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.timers, (when, self.seq, callback, args))

    def advance(self, to: float) -> None:
        while self.timers and self.timers[0][0] <= to:
            when, _, callback, args = heapq.heappop(self.timers)
            self.now = when
            callback(*args)
        self.now = to


class Check:
    def __init__(self, phase_end: float) -> None:
        self.phase_end = phase_end
        self.finished = False
        self.armed = math.inf
        self.expired_at: float | None = None
        self.loop: ManualClockLoop | None = None

    def expire(self) -> None:
        assert self.expired_at is None, "expired twice"
        assert self.loop is not None
        self.expired_at = self.loop.now

    def move(self, deadlines: Deadlines, phase_end: float) -> None:  # as _Check.enter
        self.phase_end = phase_end
        if phase_end < self.armed:
            deadlines.bound(self)


ops = st.lists(st.one_of(
    st.tuples(st.just("new"), st.floats(0.0, 5.0)),
    st.tuples(st.just("move"), st.integers(0, 30), st.floats(0.0, 5.0)),
    st.tuples(st.just("finish"), st.integers(0, 30)),
    st.tuples(st.just("advance"), st.floats(0.0, 2.0)),
), max_size=60)


@settings(max_examples=400, deadline=None)
@given(ops)
def test_a_check_expires_exactly_when_the_clock_reaches_its_current_phase_end(steps) -> None:
    loop = ManualClockLoop()
    deadlines = Deadlines(loop)  # type: ignore[arg-type]
    checks: list[Check] = []
    for step in steps:
        if step[0] == "new":
            check = Check(loop.now + step[1])
            check.loop = loop
            checks.append(check)
            deadlines.bound(check)
        elif step[0] == "move" and checks:
            check = checks[step[1] % len(checks)]
            if check.expired_at is None and not check.finished:
                check.move(deadlines, loop.now + step[2])
        elif step[0] == "finish" and checks:
            checks[step[1] % len(checks)].finished = True
        elif step[0] == "advance":
            loop.advance(loop.now + step[1])
        for check in checks:  # the model, after every step
            due = not check.finished and check.phase_end <= loop.now
            if check.expired_at is None:
                assert not due or step[0] != "advance", (check.phase_end, loop.now)
            else:
                assert check.expired_at == check.phase_end, (check.expired_at, check.phase_end)
    loop.advance(loop.now + 10.0)  # the end: every check not finished has expired
    for check in checks:
        if not check.finished:
            assert check.expired_at == check.phase_end
    assert deadlines._heap == [] or all(  # nothing live is left waiting
        ref() is None or ref().finished or ref().expired_at is not None
        for _, _, ref in deadlines._heap)


def test_a_stream_of_short_checks_sets_a_loop_timer_about_once_per_timeout() -> None:
    """5,000 checks one after another, 1 ms each, a 2 s bound: the finished checks' entries
    are dropped when the timer fires; not a timer each, but about one per 2 s of the stream."""
    loop = ManualClockLoop()
    deadlines = Deadlines(loop)  # type: ignore[arg-type]
    for _ in range(5000):
        check = Check(loop.now + 2.0)
        check.loop = loop
        deadlines.bound(check)
        loop.advance(loop.now + 0.001)
        check.finished = True
    loop.advance(loop.now + 10.0)
    assert loop.seq <= 5, loop.seq
    assert deadlines._heap == []
