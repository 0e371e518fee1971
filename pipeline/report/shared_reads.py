"""One read, keyed by target, for the views every per-target report repeats.

``edgewatch report`` builds the whole report once for all targets and once per target
(``report.by_target``). Read one after the other, the per-target builds made the cluster
aggregate every check a second time. A per-target report's rows of a view are the all-targets
rows of that target, and the all-targets rows are those of every target together, for each
view that does not count by day: the address networks, the outcomes and the timings, and of the
runs index the runs by address. The day groups count from the report's origin, the selection's
first check (to the second), which a target's own report takes from its own first check: they
are shared only when that origin is the all-targets one (the usual case: a cycle asks for every
target at once), and read apart otherwise. The run lengths are bucketed by the sampling
interval, which a target's report infers from its own runs: shared when that is the
all-targets interval (the usual case again), read apart otherwise.

``SharedTargetReads`` wraps a cluster source for one selection. The first build to ask for one
of those views reads it once, with the target as one more composite source. Every build then
takes its share: a per-target report gets its target's rows, the all-targets report all of
them. The folds that follow only add rows up (``report.evidence``), so rows split by target give
the same figures as rows that are not. Any other selection, and every other view, goes to the
source unchanged. At 10M checks (5 targets, 20 resolvers) the networks and outcomes cost the
node 4.8 s for the all-targets report and about as much again for the per-target ones, read
once by target 6.0–6.3 s; the day groups and the timings, see docs/BENCHMARKS.md. The two run
views, read by each of the six builds (all targets, five targets), took a node just started
4.3 s of its 25 s of search time, 2.2 s of it the per-target reads (2026-12-04); read by
target, the runs by address outgrew the usual page (a second page: a second pass), hence
``KEYED_PAGE`` there too.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from pipeline.report.evidence import extent_of, sampling_interval
from pipeline.report.filters import Filters
from pipeline.report.rows import (
    AddressRow,
    NetworkRow,
    OutcomeRow,
    RunAddressRow,
    RunLengthRow,
    Span,
    TimingRow,
)


class SharedTargetReads:
    """``source`` for the selection ``selected`` (plausible window applied, as
    ``build_report`` passes it), with the target-independent views read once."""

    def __init__(self, source: Any, selected: Filters, interval_s: float | None = None) -> None:
        self.source = source
        self.selected = selected
        self.given_interval = interval_s  # the report's ``Options.interval_s``
        self._read: dict[str, dict[str | None, list[Any]]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._span: list[Span | None] = []  # the selection's span, once read
        self._gaps: dict[int, list[float]] = {}  # the selection's gap sample, by limit

    def span(self, filters: Filters) -> Span | None:
        """The selection's span is read once: the all-targets build and the day groups'
        origin (``_origin``) both need it."""
        if filters != self.selected:
            return self.source.span(filters)
        with self._lock("span"):
            if not self._span:
                self._span.append(self.source.span(filters))
            return self._span[0]

    def _origin(self) -> datetime:
        return extent_of(self, self.selected).origin

    def run_gaps(self, filters: Filters, limit: int) -> list[float]:
        """The selection's gap sample is read once: the all-targets build and the run lengths'
        interval (``_interval``) both need it."""
        if filters != self.selected:
            return self.source.run_gaps(filters, limit)
        with self._lock("gaps"):
            if limit not in self._gaps:
                self._gaps[limit] = self.source.run_gaps(filters, limit)
            return self._gaps[limit]

    def _interval(self) -> float:
        """The run lengths' bucket of the all-targets build (``evidence.read``)."""
        return sampling_interval(self, self.selected, self.given_interval)[0] or 1.0

    def address_rows(self, filters: Filters, origin: datetime) -> Iterator[AddressRow]:
        if origin != self._origin():  # a target whose days begin elsewhere: its own read
            return self.source.address_rows(filters, origin)
        return self._share("address", filters,
                           lambda f: self.source.day_address_rows_by_target(f, origin),
                           lambda f: self.source.address_rows(f, origin))

    def timing_rows(self, filters: Filters, bucket_us: int) -> Iterator[TimingRow]:
        return self._share(f"timing {bucket_us}", filters,
                           lambda f: self.source.timing_rows_by_target(f, bucket_us),
                           lambda f: self.source.timing_rows(f, bucket_us))

    def __getattr__(self, name: str) -> Any:  # everything else: the source itself
        return getattr(self.source, name)

    def network_rows(self, filters: Filters) -> Iterator[NetworkRow]:
        return self._share("network", filters, self.source.target_network_rows,
                           self.source.network_rows)

    def outcome_rows(self, filters: Filters) -> Iterator[OutcomeRow]:
        return self._share("outcome", filters, self.source.target_outcome_rows,
                           self.source.outcome_rows)

    def run_address_rows(self, filters: Filters) -> Iterator[RunAddressRow]:
        return self._share("run address", filters, self.source.target_run_address_rows,
                           self.source.run_address_rows)

    def run_length_rows(self, filters: Filters, interval_s: float) -> Iterator[RunLengthRow]:
        """Shared in the all-targets build's length buckets; a target whose own runs give
        another sampling interval (or none) reads its own."""
        if interval_s != self._interval():
            return self.source.run_length_rows(filters, interval_s)
        return self._share("run length", filters,
                           lambda f: self.source.run_length_rows_by_target(f, interval_s),
                           lambda f: self.source.run_length_rows(f, interval_s))

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
        with self._lock(view):
            if view not in self._read:
                by_target: dict[str | None, list[Any]] = {}
                for target, row in keyed(self.selected):
                    by_target.setdefault(target, []).append(row)
                self._read[view] = by_target
            return self._read[view]

    def _lock(self, view: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(view, threading.Lock())
