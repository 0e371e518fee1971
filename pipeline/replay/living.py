"""The living list as a firewall model (issue 18, item 4): ``edgewatch allowlist serve``'s rule
replayed over the recorded cycles, judged like an FQDN object.

* The list is the rule of ``pipeline.publish.rule`` (the same function the server runs) over
  the probe's own successful, verified checks of every resolver.
* The firewall fetches it at the first cycle and then whenever ``refresh`` has passed since its
  last fetch (to within half a sampling interval, as for FQDN objects).
* A fetch at cycle k sees the checks of cycles before k only: the probe's checks of cycle k are
  not stored yet when clients resolve at k. An address that appears at cycle k therefore blocks
  the clients that got it at k (and until the next fetch) — the list's real lag.
* Cycles before the first fetch that found any evidence are a warm-up and are not counted:
  a list is deployed once it has something in it.

Each client answer is then fully or partly blocked exactly as in ``fqdn``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import timedelta

from pipeline.allowlists.parse import Matcher
from pipeline.config.firewall import FirewallModel
from pipeline.publish.rule import BUCKET_S, ListRule, Sighting, TargetList, compute
from pipeline.replay.fqdn import ClientResult, Walk
from pipeline.replay.series import Cycle
from pipeline.report.networks import derived_prefix24


def rule_of(model: FirewallModel) -> ListRule:
    return ListRule(by=model.by, hold_s=model.hold_s, window_s=model.window_s,
                    max_entries=model.max_entries, floor=model.floor)


class LivingList:
    """The served list's state between cycles: evidence so far, the list the firewall holds."""

    def __init__(self, model: FirewallModel, slack_s: float) -> None:
        self.model, self.rule, self.slack_s = model, rule_of(model), slack_s
        self.evidence: list[Sighting] = []
        self.held: TargetList | None = None
        self.fetched_at: float | None = None
        self.matcher = Matcher(())

    def fetch_due(self, now: float) -> bool:
        refresh = self.model.refresh_s or 0.0
        return self.fetched_at is None or now - self.fetched_at >= refresh - self.slack_s

    def fetch(self, target: str, cycle: Cycle, walk: Walk) -> None:
        keep = cycle.time - timedelta(seconds=self.rule.window_s + self.rule.hold_s)
        self.evidence = [s for s in self.evidence if s.last >= keep]
        self.held = compute(target, self.evidence, self.rule, cycle.time, self.held)
        networks = [ipaddress.ip_network(c) for c in self.held.cidrs()]
        self.matcher = Matcher(networks)
        self.fetched_at = cycle.time.timestamp()
        walk.refreshes += 1
        walk.largest_set = max(walk.largest_set, len(networks))

    def allows(self, address: str) -> bool:
        return address in self.matcher

    def record(self, target: str, cycle: Cycle) -> None:
        """The cycle's verified checks become evidence for the next fetch."""
        bucket = int(cycle.time.timestamp() // BUCKET_S)
        for answer in cycle.answers.values():
            for ip in answer.verified:
                self.evidence.append(Sighting(target, ip, derived_prefix24(ip), None, bucket,
                                              1, answer.time))


def replay_living(model: FirewallModel, cycles: Iterable[Cycle], clients: Sequence[str],
                  interval_s: float | None = None) -> Walk:
    """Walk ``cycles`` (in time order, one target and type) through the living list."""
    fw = LivingList(model, (interval_s or 0.0) / 2)
    walk = Walk(clients={c: ClientResult(c) for c in clients})
    target = ""
    for cycle in cycles:
        if not target and cycle.answers:
            target = next(iter(cycle.answers.values())).target
        if fw.fetch_due(cycle.time.timestamp()):
            fw.fetch(target, cycle, walk)
        if fw.held is not None and fw.held.evidence_time is not None:
            for name in clients:
                answer = cycle.answers.get(name)
                if answer is not None and answer.ok:
                    allowed = {a for a in answer.addresses if fw.allows(a)}
                    walk.clients[name].count(answer.addresses, allowed)
        else:
            walk.failed_refreshes += fw.fetched_at == cycle.time.timestamp()
        fw.record(target, cycle)
    return walk
