"""One read, keyed by target, for the views every per-target report repeats.

``edgewatch report`` builds the whole report once for all targets and once per target
(``report.by_target``). Read one after the other, the per-target builds made the cluster
aggregate every check a second time. Two of the views a report reads do not count by day: the
address networks and the outcomes. Their rows for one target are the all-targets rows of that
target, and the all-targets rows are those of every target together. The rows of a per-target
report's day groups are another matter: a target's days count from its own first check. The
timings do not count by day either, but with the target as one more key their groups outgrow a
composite page at 10M checks, and every page is one more pass over the checks (8.6–10 s against
2.9–3.5 s for the all-targets read alone), so each build reads its own.

``SharedTargetReads`` wraps a cluster source for one selection. The first build to ask for one
of those two views reads it once, with the target as one more composite source. Every build
then takes its share: a per-target report gets its target's rows, the all-targets report all of
them. The folds that follow only add rows up (``report.evidence``), so rows split by target give
the same figures as rows that are not. Any other selection, and every other view, goes to the
source unchanged. At 10M checks (5 targets) the two views cost the node 4.8 s for the
all-targets report and about as much again for the per-target ones; read once by target,
6.0–6.3 s (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pipeline.report.filters import Filters
from pipeline.report.rows import NetworkRow, OutcomeRow


class SharedTargetReads:
    """``source`` for the selection ``selected`` (plausible window applied, as
    ``build_report`` passes it), with the target-independent views read once."""

    def __init__(self, source: Any, selected: Filters) -> None:
        self.source = source
        self.selected = selected
        self._read: dict[str, dict[str | None, list[Any]]] = {}
        self._locks = {"network": threading.Lock(), "outcome": threading.Lock()}

    def __getattr__(self, name: str) -> Any:  # everything else: the source itself
        return getattr(self.source, name)

    def network_rows(self, filters: Filters) -> Iterator[NetworkRow]:
        return self._share("network", filters, self.source.target_network_rows,
                           self.source.network_rows)

    def outcome_rows(self, filters: Filters) -> Iterator[OutcomeRow]:
        return self._share("outcome", filters, self.source.target_outcome_rows,
                           self.source.outcome_rows)

    def _share(self, view: str, filters: Filters,
               keyed: Callable[[Filters], Iterator[tuple[str | None, Any]]],
               plain: Callable[[Filters], Iterator[Any]]) -> Iterator[Any]:
        whole = filters.targets == self.selected.targets
        one = len(filters.targets) == 1 and (
            not self.selected.targets or filters.targets[0] in self.selected.targets)
        same = dataclasses.replace(filters, targets=self.selected.targets) == self.selected
        if not same or not (whole or one):
            return plain(filters)
        by_target = self._rows(view, keyed)
        if whole:
            return iter([row for rows in by_target.values() for row in rows])
        return iter(by_target.get(filters.targets[0], []))

    def _rows(self, view: str, keyed: Callable[[Filters], Iterator[tuple[str | None, Any]]]
              ) -> dict[str | None, list[Any]]:
        """The rows of ``view`` by target, read by the first build that asks; the others
        wait on the view's lock for that read instead of issuing their own."""
        with self._locks[view]:
            if view not in self._read:
                by_target: dict[str | None, list[Any]] = {}
                for target, row in keyed(self.selected):
                    by_target.setdefault(target, []).append(row)
                self._read[view] = by_target
            return self._read[view]
