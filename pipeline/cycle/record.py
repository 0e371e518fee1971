"""Step two of a cycle: the run state and the documents that follow from its observations.

Each query is applied to the run tracker (which runs its answer continues, opens or closes), then
becomes its check documents; every run that changed becomes a run summary. At most
``limits.max_addresses`` addresses of one answer were connected to; the others are still
recorded, in their runs and in a document each, marked ``edgewatch.connect.skipped: "cap"``.
Nothing is committed or written here: ``deliver`` does that, so a failed write can undo it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.allowlists import DeployedLists
from pipeline.config import Config
from pipeline.cycle.observe import Observations, Query
from pipeline.documents import (
    CAP_SKIPPED,
    AddressFacts,
    CheckContext,
    Record,
    allowlist_miss_record,
    check_id,
    check_records,
    run_record,
)
from pipeline.ids import cycle_id
from pipeline.probe.connect import ConnectResult
from pipeline.probe.netinfo import NetInfo
from pipeline.runs import Assignment, Poll, Run, RunTracker


@dataclass
class Recorded:
    """The cycle's records (check documents, then run summaries) and what they count."""

    records: list[Record] = field(default_factory=list)
    checks: int = 0
    skipped: int = 0  # address documents whose connect check the address cap skipped
    failures: Counter[str] = field(default_factory=Counter)
    events: list[Record] = field(default_factory=list)  # also in records, after the runs


class _Recorder:
    """The per-cycle constants every check document shares, and the changed runs so far."""

    def __init__(self, obs: Observations, tracker: RunTracker, config: Config,
                 netinfo: dict[str, NetInfo]) -> None:
        self.obs, self.tracker, self.config, self.netinfo = obs, tracker, config, netinfo
        self.cycle_id = cycle_id(config.observer_name, obs.started)
        es = config.elasticsearch
        self.namespace = es.namespace if es is not None else "default"
        self.changed: dict[str, Run] = {}

    def poll(self, q: Query) -> dict[str, Assignment]:
        res = q.result
        assignments, changed = self.tracker.observe(Poll(
            self.config.observer_name, q.target.name, q.rtype, q.resolver.name,
            q.resolver.address, q.at, res.ok,
            (a.address for a in res.addresses) if res.ok else ()))
        for run in changed:
            self.changed[run.id] = run
        return assignments

    def context(self, q: Query) -> CheckContext:
        cfg = self.config
        return CheckContext(self.cycle_id, check_id(cfg.observer_name, self.obs.started,
                                                    q.target.name, q.rtype),
                            cfg.observer_name, cfg.observer_geo, q.target.name, q.rtype,
                            q.target.port, self.namespace)

    def checked(self, q: Query) -> tuple[dict[str, ConnectResult], dict[str, str]]:
        """The connect result of each answered address, or why it has none (the cap)."""
        per_addr: dict[str, ConnectResult] = {}
        skipped: dict[str, str] = {}
        for a in q.result.addresses if q.result.ok else ():
            # An address beyond the cap in this answer may have been checked for another
            # resolver's answer: that check is the address's fact for this cycle.
            conn = self.obs.connects.get((a.address, q.target.port, q.target.server_name))
            if conn is not None:
                per_addr[a.address] = conn
            else:
                skipped[a.address] = CAP_SKIPPED
        return per_addr, skipped


def record(obs: Observations, tracker: RunTracker, config: Config,
           netinfo: Callable[[str], NetInfo], lists: DeployedLists | None = None) -> Recorded:
    """Apply every query to the run state and build the cycle's documents (uncommitted).

    With ``lists``, every answered address gets the verdict of each list in force."""
    info = {a: netinfo(a) for a in obs.addresses()}
    verdicts = {a: lists.verdict(a) for a in obs.addresses()} if lists else {}
    rec = _Recorder(obs, tracker, config, info)
    out = Recorded()
    for q in obs.queries:
        assignments = rec.poll(q)
        per_addr, skipped = rec.checked(q)
        out.skipped += len(skipped)
        facts = AddressFacts(per_addr, obs.rdns, info, assignments, skipped, verdicts)
        checks = check_records(rec.context(q), q.at, q.result, facts)
        out.records.extend(checks)
        if lists:
            out.events.extend(_misses(checks, assignments, lists))
        out.checks += 1
        if q.result.error_type:
            out.failures[q.result.error_type] += 1
    for c in obs.connects.values():
        if c.error_type:
            out.failures[c.error_type] += 1
    for run in rec.changed.values():
        address = run.key.address
        ptr = obs.rdns.get(address)
        out.records.append(run_record(run, info.get(address) or netinfo(address),
                                      ptr.hostname if ptr else None))
    out.records.extend(out.events)
    return out


def _misses(checks: list[Record], assignments: dict[str, Assignment],
            lists: DeployedLists) -> list[Record]:
    """The allowlist-miss events of one query's check documents: once per run.

    A run's first check (``seq`` 1, kept in the run state, so a restart does not repeat it)
    whose address no list allows is the event; so is the first check after a list was replaced
    that took the address out of every list. The event ``_id`` is the run's: in Elasticsearch
    a run has one such event whatever happens."""
    out = []
    for c in checks:
        addr = c.doc.get("destination.ip")
        run = assignments.get(addr) if addr else None
        if run is None or not lists.allowed_by_none(addr):
            continue
        if run.seq == 1 or lists.newly_denied(addr):
            out.append(allowlist_miss_record(c))
    return out
