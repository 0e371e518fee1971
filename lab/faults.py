"""Deterministic resolver misbehaviour in scenario time.

Faults are chosen per time slot by a seeded hash, not by a random generator at run time, so the
shim that injects them and the ground truth that predicts them agree on every single poll without
sharing any state. Slots start at `phase` past the grid (hh:07:30 by default), so a poll on the
grid always lies well inside one slot.
"""

from __future__ import annotations

import hashlib
import math

from lab.scenario import Faults

DROP = "drop"
SERVFAIL = "servfail"


def unit_hash(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) from the given parts (seed, name, slot ...)."""
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def fault_at(faults: Faults | None, seed: int, resolver: str, epoch: float, t: float) -> str | None:
    """Which fault (DROP, SERVFAIL or None) hits a query reaching `resolver` at scenario time t."""
    if faults is None:
        return None
    rel = t - epoch - faults.phase
    if faults.servfail_every:
        period = math.floor(rel / faults.servfail_every)
        if unit_hash(seed, resolver, "servfail", period) < faults.servfail_probability:
            slots = round(faults.servfail_every / faults.slot)
            length = round(faults.servfail_length / faults.slot)
            first = int(unit_hash(seed, resolver, "burst-start", period) * (slots - length + 1))
            slot_in_period = math.floor((rel - period * faults.servfail_every) / faults.slot)
            if first <= slot_in_period < first + length:
                return SERVFAIL
    if faults.drop:
        slot = math.floor(rel / faults.slot)
        if unit_hash(seed, resolver, "drop", slot) < faults.drop:
            return DROP
    return None
