"""``build_replay(source, filters, models)``: the replay sections per target, then for all.

A firewall rule is per API, so every figure is per target first (issue 15, item 5). Within a
target the A and AAAA series are replayed apart (see ``series``) and their counts added.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.config.firewall import FQDN, LIVING, STATIC, FirewallModel
from pipeline.replay.choice import Choice, resolver_choice
from pipeline.replay.ecs import EcsRow, ecs_evidence
from pipeline.replay.fqdn import replay_fqdn
from pipeline.replay.living import replay_living
from pipeline.replay.series import Series, median_gap_s, series_of
from pipeline.replay.static import replay_static
from pipeline.report.answers import AnswerRow
from pipeline.report.blocks import BlockLevel
from pipeline.report.filters import Filters

SCHEMA = "edgewatch.replay/1"
MISSED_SHOWN = 10
# One replay function per model kind (pipeline/config/firewall.py ``_KINDS``): a later kind
# (a "living list" with window/hold/refresh over the probe's own verified checks) is one more
# entry, returning the same ``Walk``.
REPLAYERS = {FQDN: replay_fqdn, LIVING: replay_living, STATIC: replay_static}
LOWER_BOUND = ("Rotation faster than the cadence is invisible to the replay: an address that "
               "came and went between two cycles was never recorded, so every blocked figure "
               "is a lower bound.")


@dataclass
class ClientFigures:
    """One model × target × client resolver (definitions: docs/REPORT.md, "Replay")."""

    client: str
    checks: int
    partly: int
    fully: int
    partly_share: float | None
    fully_share: float | None
    blocked_share: float | None
    blocked_intervals: int
    blocked_s: float | None
    longest_blocked_s: float | None
    longest_fully_s: float | None
    missed: int
    missed_addresses: list[str]


@dataclass
class ModelFigures:
    name: str
    kind: str
    resolver: str
    refresh: str
    max_addresses: int
    keep_previous_s: float
    description: str
    refreshes: int
    failed_refreshes: int
    clients: list[ClientFigures]


@dataclass
class TargetReplay:
    target: str
    cycles: int
    models: list[ModelFigures]
    choice: dict[str, Any]
    ecs: list[dict[str, Any]]
    blocks: list[BlockLevel] = field(default_factory=list)


@dataclass
class Replay:
    source: str
    filters: dict[str, Any]
    interval_s: float | None
    note: str
    targets: list[TargetReplay]
    generated_at: str = ""
    schema: str = SCHEMA

    def target(self, name: str) -> TargetReplay:
        return next(t for t in self.targets if t.target == name)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {"schema": out.pop("schema"), **out}


def _times(n: int, interval_s: float | None) -> float | None:
    return None if interval_s is None else n * interval_s


def model_figures(model: FirewallModel, series: Sequence[Series], clients: Sequence[str],
                  interval_s: float | None) -> ModelFigures:
    """One model over a target's series, counts added over the record types."""
    acc: dict[str, list[Any]] = {c: [0, 0, 0, 0, 0, set()] for c in clients}
    refreshes = failed = 0
    for s in series:
        walk = REPLAYERS[model.kind](model, s.cycles, clients, interval_s)
        refreshes += walk.refreshes
        failed += walk.failed_refreshes
        for c, r in walk.clients.items():
            a = acc[c]
            a[0] += r.checks
            a[1] += r.partly
            a[2] += r.fully
            a[3] = max(a[3], r.longest_blocked)
            a[4] = max(a[4], r.longest_fully)
            a[5] |= r.missed
    rows = []
    for c in clients:
        checks, partly, fully, longest, longest_fully, missed = acc[c]
        rows.append(ClientFigures(
            client=c, checks=checks, partly=partly, fully=fully,
            partly_share=partly / checks if checks else None,
            fully_share=fully / checks if checks else None,
            blocked_share=(partly + fully) / checks if checks else None,
            blocked_intervals=partly + fully, blocked_s=_times(partly + fully, interval_s),
            longest_blocked_s=_times(longest, interval_s),
            longest_fully_s=_times(longest_fully, interval_s),
            missed=len(missed), missed_addresses=sorted(missed)[:MISSED_SHOWN]))
    return ModelFigures(name=model.name, kind=model.kind, resolver=model.resolver,
                        refresh=model.refresh_label, max_addresses=model.max_addresses,
                        keep_previous_s=model.keep_previous_s, description=model.description,
                        refreshes=refreshes, failed_refreshes=failed, clients=rows)


def _choice_dict(c: Choice) -> dict[str, Any]:
    return {"resolvers": c.resolvers, "best": c.best, "best_share": c.best_share,
            "cells": [{"firewall": x.firewall, "client": x.client, "checks": x.checks,
                       "partly": x.partly, "fully": x.fully, "share": x.share}
                      for x in c.cells],
            "jaccard": c.jaccard}


def _ecs_dict(row: EcsRow) -> dict[str, Any]:
    out = dataclasses.asdict(row)
    out["scoped_share"] = row.scoped_share
    out["differ_share"] = row.differ_share
    return out


def target_replay(target: str, series: list[Series], models: Sequence[FirewallModel],
                  interval_s: float | None, origin: datetime) -> TargetReplay:
    mine = [s for s in series if s.target == target]
    clients = sorted({n for s in mine for n in s.resolvers})
    return TargetReplay(
        target=target, cycles=sum(len(s.cycles) for s in mine),
        models=[model_figures(m, mine, clients, interval_s) for m in models],
        choice=_choice_dict(resolver_choice(mine, origin)),
        ecs=[_ecs_dict(r) for r in ecs_evidence(mine)])


def replay_rows(rows: list[AnswerRow], models: Sequence[FirewallModel],
                interval_s: float | None = None, description: str = "",
                filters: Filters | None = None) -> Replay:
    """The replay of already-read answer rows (what tests and the report call)."""
    series = series_of(rows)
    interval = interval_s or median_gap_s(series)
    origin = min((r.time for r in rows), default=datetime.now(UTC))
    targets = sorted({s.target for s in series})
    return Replay(
        source=description, filters=(filters or Filters()).describe(), interval_s=interval,
        note=LOWER_BOUND,
        targets=[target_replay(t, series, models, interval, origin) for t in targets],
        generated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))


def replay_source(source: Any, filters: Filters, models: Sequence[FirewallModel],
                  interval_s: float | None = None) -> Replay:
    """Read the answers of ``filters`` from ``source`` and replay them."""
    return replay_rows(source.answer_rows(filters), models, interval_s, source.description,
                       filters)
