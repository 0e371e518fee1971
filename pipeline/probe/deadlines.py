"""The phase bounds of every check on one event loop, kept by one loop timer: ``Deadlines``.

Why not a loop timer per check (``loop.call_at``, then ``cancel``): each is a handle made with a
copy of the context, pushed on the loop's heap, cancelled and popped again later, and every loop
iteration looks at the heap; with the timer gone, a sequential TLS check measured ≈ 11 µs (2 %)
less CPU (docs/BENCHMARKS.md). Here a check's bound is one entry on a heap of ours, and the one
loop timer is set for the earliest entry that can matter. A check that ends never takes its
entry off: a finished check's entries are skipped (and dropped) when the timer next fires, so in
a steady stream of checks the timer fires about once per phase timeout, not once per check.

An entry holds its check weakly: a finished check's memory is not kept for the length of its
timeout. The timer itself is not kept either (it is never cancelled): a timer that fires and
finds nothing due sets the next one, if any, and ends.

The rule kept for every check is that of the timer per check it replaces: when the entry set for
the check's phase end comes due and the phase has not been moved later, the phase's time is up
(``Bounded.expire``); a phase moved later gets an entry of its own then.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import weakref
from typing import Protocol


class Bounded(Protocol):
    """What ``Deadlines`` needs of a check: when its current phase ends, whether it is over,
    which of its entries is the live one, and what to do when its time is up."""

    phase_end: float
    finished: bool
    armed: float  # the ``when`` of its live entry (math.inf: none)

    def expire(self) -> None: ...


class Deadlines:
    """The entries of one loop's checks, and the one loop timer for the earliest."""

    __slots__ = ("__weakref__", "_armed", "_heap", "_loop", "_seq")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # weak: see ``for_loop``
        self._heap: list[tuple[float, int, weakref.ref[Bounded]]] = []
        self._seq = itertools.count()  # ties broken by order: no check is ever compared
        self._armed = math.inf  # the time of the earliest loop timer set (math.inf: none)

    def bound(self, check: Bounded) -> None:
        """Keep ``check`` to its ``phase_end``: call when that end has moved earlier than the
        check's live entry (``check.armed``), as ``_Check.enter`` does."""
        when = check.phase_end
        check.armed = when
        heapq.heappush(self._heap, (when, next(self._seq), weakref.ref(check)))
        if when < self._armed:
            self._arm(when)

    def _arm(self, when: float) -> None:
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        self._armed = when
        loop.call_at(when, self._fire, when)

    def _fire(self, when: float) -> None:
        if when == self._armed:
            self._armed = math.inf
        heap = self._heap
        while heap:
            due, _, ref = heap[0]
            check = ref()
            if check is None or check.finished or due != check.armed:
                heapq.heappop(heap)  # over, or an entry another has superseded
                continue
            if due > when:
                break  # the earliest entry that matters, still to come
            heapq.heappop(heap)
            if check.phase_end > due:  # a later phase: its own end is still to come
                check.armed = check.phase_end
                heapq.heappush(heap, (check.phase_end, next(self._seq), ref))
            else:
                check.armed = math.inf
                check.expire()
        if heap and heap[0][0] < self._armed:
            self._arm(heap[0][0])


_TABLES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = (
    weakref.WeakKeyDictionary())


def for_loop(loop: asyncio.AbstractEventLoop) -> Deadlines:
    """The deadlines of ``loop``, made on first use. (They hold the loop weakly: a value of
    this weak-keyed table that held its key would keep the loop alive for ever.)"""
    found = _TABLES.get(loop)
    if found is None:
        found = _TABLES[loop] = Deadlines(loop)
    return found
