"""The proof: polling the running lab through every real resolver matches truth.observe exactly.

Four scenario hours on the 15-minute grid (a real second apart at 900x), all resolvers and both
targets, plain dnspython. Of the next few possible windows, one with a dropped poll and a SERVFAIL
burst is preferred.
"""

from __future__ import annotations

import asyncio
from itertools import pairwise

from labtest_helpers import next_grid, poll_grid

from lab.stack import LabStack
from lab.truth import poll_times

HOURS = 4


def choose_window(lab: LabStack) -> list[float]:
    """The next window (starting within an hour) with both kinds of fault, if there is one."""
    first = next_grid(lab, lead_real=0.5)
    for k in range(5):
        start = first + k * lab.scenario.grid
        times = poll_times(start, start + HOURS * 3600, lab.scenario.grid)
        kinds = {lab.truth.fault(r.name, t) for r in lab.scenario.resolvers for t in times}
        if {"drop", "servfail"} <= kinds:
            return times
    return poll_times(first, first + HOURS * 3600, lab.scenario.grid)


def test_polls_match_truth_exactly(lab: LabStack) -> None:
    times = choose_window(lab)
    observed = asyncio.run(poll_grid(lab, times, timeout=1.0))
    mismatches = []
    for (resolver, target), answers in observed.items():
        expected = lab.truth.observe(resolver, target, times)
        for t, got, want in zip(times, answers, expected, strict=True):
            if (got.addresses, got.rcode, got.error_type) != (
                    want.addresses, want.rcode, want.error_type):
                mismatches.append((resolver, target, t, got, want))
    assert not mismatches, mismatches[:5]
    kinds = {a.error_type for answers in observed.values() for a in answers}
    changes = sum(a.addresses != b.addresses
                  for answers in observed.values() for a, b in pairwise(answers))
    assert changes > 0  # the window saw rotation
    assert len(observed) == len(lab.scenario.resolvers) * len(lab.scenario.targets)
    print(f"{len(times)} polls x {len(observed)} series; errors seen: {kinds}")
