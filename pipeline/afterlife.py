"""Which retired addresses get an afterlife check this cycle, derived from the run state.

An allowlist built from DNS answers keeps an address after the CDN stopped handing it out. What
that stale entry means is measured by checking the address on, over TCP and TLS for the
target's name exactly as a live check does, for ``[afterlife] duration`` after its run ended:
it may still serve the name with a valid certificate (harmless), refuse (a dead entry), or
present another certificate (the address now belongs to someone else: a risk).

An address is *retired* for a target when no resolver has an open run of it for that name and
at least one run of it ended less than ``duration`` ago; its afterlife refers to the run that
ended last. The set is read from the run tracker's retired runs (``RunTracker.retired_runs``),
so it survives a restart with the state, and a new run of the address ends the afterlife. At
most ``max_addresses`` are checked per cycle, the most recently retired first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.config import Config, Target
from pipeline.runs import RunTracker


@dataclass(frozen=True, slots=True)
class Retired:
    """An address whose last run for a target ended: what its afterlife checks refer to."""

    target: Target
    address: str
    run_id: str  # the run that ended last
    ended: datetime

    @property
    def connect_key(self) -> tuple[str, int, str]:
        """The cycle's key of a connect check (address, port, server name)."""
        return self.address, self.target.port, self.target.server_name


def retired_addresses(tracker: RunTracker, config: Config, now: datetime) -> list[Retired]:
    """The addresses under afterlife at ``now``, newest retirement first, at most the cap.

    Also expires (uncommitted, like every transition of a cycle) the retired runs whose
    afterlife is over: all of them once the afterlife is turned off.
    """
    tracker.expire(now)
    if not config.afterlife.enabled:
        return []
    live = {(r.key.name, r.key.address) for r in tracker.open_runs()
            if r.key.observer == config.observer_name}
    targets = {t.name: t for t in config.targets}
    latest: dict[tuple[str, str], Retired] = {}
    for run in tracker.retired_runs():
        key = (run.key.name, run.key.address)
        target = targets.get(run.key.name)
        if (run.end is None or target is None or key in live
                or run.key.observer != config.observer_name):
            continue
        have = latest.get(key)
        if have is None or (run.end, run.id) > (have.ended, have.run_id):
            latest[key] = Retired(target, run.key.address, run.id, run.end)
    ordered = sorted(latest.values(), key=lambda r: (-r.ended.timestamp(), r.target.name,
                                                     r.address))
    return ordered[:config.afterlife.max_addresses]
