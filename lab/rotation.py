"""The rotation schedule: which addresses a target's last CNAME owns, for a view, at an instant.

Pure functions of (target, view, scenario time) so that the authoritative server and the ground
truth compute the very same answer; nothing here knows about sockets or clocks.
"""

from __future__ import annotations

import math

from lab.scenario import Rule, Target


def rule_active(rule: Rule, view: str, t: float) -> bool:
    """Whether a rule contributes to `view`'s answer at scenario time `t` ([from, until))."""
    if rule.views is not None and view not in rule.views:
        return False
    if rule.start is not None and t < rule.start:
        return False
    return not (rule.until is not None and t >= rule.until)


def rule_addresses(rule: Rule, t: float) -> tuple[str, ...]:
    """The addresses one active rule hands out at scenario time `t`."""
    if rule.kind == "stable":
        return rule.addresses
    if rule.kind == "rotate":
        slot = math.floor((t - rule.epoch - rule.phase) / rule.period)
        first = (slot * rule.stride) % len(rule.pool)
        return tuple(rule.pool[(first + i) % len(rule.pool)] for i in range(rule.count))
    # migrate: one more address moves from `pool` to `to_pool` at `from` and every `step` after
    assert rule.start is not None
    moved = min(rule.count, math.floor((t - rule.start) / rule.step) + 1)
    return rule.pool[: rule.count - moved] + rule.to_pool[:moved]


def addresses_at(target: Target, view: str, t: float) -> frozenset[str]:
    """Union of the active rules minus active withdrawals: the A RRset served at `t`."""
    out: set[str] = set()
    for rule in target.rules:
        if rule_active(rule, view, t):
            out.update(rule_addresses(rule, t))
    for w in target.withdrawals:
        if w.start <= t < w.until and (w.views is None or view in w.views):
            out.discard(w.address)
    return frozenset(out)
