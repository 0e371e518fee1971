"""How long one check and one cycle can take under the configured timeouts.

The one place these bounds are derived: the scheduler's shutdown grace and the faults tests'
deadlines both come from here, so a new timeout is counted once.
"""

from __future__ import annotations

from pipeline.config import Config


def check_budget(config: Config) -> float:
    """The longest one check can take under the configured timeouts: query, then connect + TLS
    handshake + HTTP request of an answered address (the reverse lookup runs beside them)."""
    t = config.timeouts
    return t.dns + max(t.connect + t.tls + t.http, t.dns if config.rdns_enabled else 0.0)


def cycle_budget(config: Config) -> float:
    """An upper bound of one cycle's duration once every probe honours its timeout.

    Greedy scheduling under ``limits.concurrency`` finishes within (total work / slots) + the
    longest chain; the total work counts every query at its DNS timeout and, per answer, up to
    ``limits.max_addresses`` addresses at their connect + TLS + HTTP (+ PTR) timeouts, and up
    to ``afterlife.max_addresses`` afterlife checks at connect + TLS + HTTP (no PTR).
    """
    t = config.timeouts
    queries = sum(len(target.record_types) for target in config.targets) * len(config.resolvers)
    per_address = t.connect + t.tls + t.http + (t.dns if config.rdns_enabled else 0.0)
    retired = config.afterlife.max_addresses if config.afterlife.enabled else 0
    work = (queries * t.dns + queries * config.limits.max_addresses * per_address
            + retired * (t.connect + t.tls + t.http))
    return work / max(1, config.limits.concurrency) + check_budget(config)
