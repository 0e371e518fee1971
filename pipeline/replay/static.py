"""A static list as a firewall model: deployed once, never refreshed — the baseline.

The list file is read when the replay runs (every format ``edgewatch allowlist`` writes); each
client answer is fully or partly blocked exactly as in ``fqdn``. Replayed over the period the
list was generated from, it shows how well it would have done; over the weeks after, how fast
it went stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipeline.allowlists.parse import Matcher, read_list
from pipeline.config.firewall import FirewallModel
from pipeline.replay.fqdn import ClientResult, Walk
from pipeline.replay.series import Cycle


def replay_static(model: FirewallModel, cycles: Iterable[Cycle], clients: Sequence[str],
                  interval_s: float | None = None) -> Walk:
    assert model.file is not None
    parsed, _ = read_list(model.file)
    allowed = Matcher(parsed.networks)
    walk = Walk(refreshes=1, largest_set=len(parsed.networks),
                clients={c: ClientResult(c) for c in clients})
    for cycle in cycles:
        for name in clients:
            answer = cycle.answers.get(name)
            if answer is not None and answer.ok:
                walk.clients[name].count(answer.addresses,
                                         {a for a in answer.addresses if a in allowed})
    return walk
