"""The FQDN-object replay (issue 15, item 1): exactly this algorithm, cycle by cycle.

* At cycle k the firewall refreshes when it has not refreshed yet or the time since its last
  refresh is at least its refresh interval (the model's fixed interval, or for ``"ttl"``
  max(TTL its resolver served at the last refresh, ``min_refresh``)), to within half a sampling
  interval: cycles are the replay's clock, and a cycle's recorded instant wanders with the
  queries' latency. A refresh takes that
  resolver's answer at cycle k, truncated to the first ``max_addresses`` in the order returned.
  A failed (or missing) answer is no refresh: the previous set stays, and the firewall tries
  again at the next cycle.
* The allowed set at cycle k is the last refresh's addresses plus those of earlier refreshes
  that a later refresh dropped less than ``keep_previous`` ago.
* Each successful answer of a client resolver C at cycle k is *fully blocked* when none of its
  addresses is allowed and *partly blocked* when some, not all, are not (a client may pick
  either). Failed answers of C are not checks; they neither extend nor end a blocked stretch.

Rotation faster than the cadence is invisible: every figure is a lower bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pipeline.config.firewall import FirewallModel
from pipeline.replay.series import Cycle


@dataclass
class ClientResult:
    """One model × target × type × client resolver. Times are in sampling intervals × s."""

    resolver: str
    checks: int = 0
    partly: int = 0
    fully: int = 0
    longest_blocked: int = 0  # most consecutive blocked (partly or fully) checks
    longest_fully: int = 0
    missed: set[str] = field(default_factory=set)
    _run: int = 0
    _run_fully: int = 0

    @property
    def blocked(self) -> int:
        return self.partly + self.fully

    def count(self, answer: Sequence[str], allowed: set[str]) -> None:
        addrs = set(answer)
        out = addrs - allowed
        self.checks += 1
        self.missed |= out
        full = bool(out) and out == addrs
        if full:
            self.fully += 1
        elif out:
            self.partly += 1
        self._run = self._run + 1 if out else 0
        self._run_fully = self._run_fully + 1 if full else 0
        self.longest_blocked = max(self.longest_blocked, self._run)
        self.longest_fully = max(self.longest_fully, self._run_fully)


@dataclass
class Walk:
    """The firewall's side of a replay: its refreshes and what it allowed."""

    refreshes: int = 0
    failed_refreshes: int = 0
    largest_set: int = 0
    clients: dict[str, ClientResult] = field(default_factory=dict)


class FqdnObject:
    """The firewall object's state between cycles."""

    def __init__(self, model: FirewallModel, slack_s: float = 0.0) -> None:
        self.model = model
        self.slack_s = slack_s
        self.last: tuple[float, tuple[str, ...], int | None] | None = None  # time, set, ttl
        self.dropped: dict[str, float] = {}  # address → when a refresh dropped it

    def _due(self, now: float) -> bool:
        if self.last is None:
            return True
        m = self.model
        interval = (m.refresh_s if m.refresh_s is not None
                    else max(float(self.last[2] or 0), m.min_refresh_s))
        return now - self.last[0] >= interval - self.slack_s

    def step(self, now: float, cycle: Cycle, walk: Walk) -> set[str]:
        """Refresh if due; return the allowed set at this cycle."""
        if self._due(now):
            answer = cycle.answers.get(self.model.resolver)
            if answer is not None and answer.ok:
                cap = self.model.max_addresses
                kept = answer.addresses[:cap] if cap else answer.addresses
                if self.last is not None:
                    for a in set(self.last[1]) - set(kept):
                        self.dropped[a] = now
                for a in kept:
                    self.dropped.pop(a, None)
                self.last = (now, tuple(kept), answer.ttl)
                walk.refreshes += 1
            else:
                walk.failed_refreshes += 1
        allowed = set(self.last[1]) if self.last else set()
        # Cycles come in time order, so a dropped address past its hold never counts again:
        # forget it, or every step walks every address the object ever dropped (on 1M checks
        # that set comprehension was the replay's largest cost).
        keep = self.model.keep_previous_s
        for a in [a for a, when in self.dropped.items() if now - when >= keep]:
            del self.dropped[a]
        allowed |= self.dropped.keys()
        walk.largest_set = max(walk.largest_set, len(allowed))
        return allowed


def replay_fqdn(model: FirewallModel, cycles: Iterable[Cycle], clients: Sequence[str],
                interval_s: float | None = None) -> Walk:
    """Walk ``cycles`` (in time order) through ``model``; count every client's checks.

    ``interval_s`` is the sampling interval; half of it is the refresh timing's tolerance."""
    fw = FqdnObject(model, (interval_s or 0.0) / 2)
    walk = Walk(clients={c: ClientResult(c) for c in clients})
    for cycle in cycles:
        allowed = fw.step(cycle.time.timestamp(), cycle, walk)
        for name in clients:
            answer = cycle.answers.get(name)
            if answer is not None and answer.ok:
                walk.clients[name].count(answer.addresses, allowed)
    return walk


def every_cycle(resolver: str) -> FirewallModel:
    """The trivial model of the resolver-choice matrix: refresh every cycle, no cap, no hold."""
    return FirewallModel(name=f"every-cycle:{resolver}", resolver=resolver, refresh_s=0.0)
