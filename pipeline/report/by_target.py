"""Per target first (issue 15, item 5): a firewall rule is per API.

``build_by_target`` builds the whole report once per target (verdict, coverage, decay, failures,
the blocks and every replay section of that target) and once for all targets together; the
all-targets report carries the per-target ones in ``targets`` and is shown below them as a
summary. A demo that mixes a production name with a staging name whose edges are broken on
purpose then reads per name, not as one blended failure rate.

The replay sections are the one part whose cost grows with the queries rather than with the
distinct groups: a replay needs every query's answer, so every check document crosses the wire
and every resolver pair is walked in Python (about half a millisecond a query with ten
resolvers, measured in docs/BENCHMARKS.md). Above ``replay_limit`` queries the report leaves
them out and says so in ``replay_note``; ``edgewatch replay`` computes them for any selection.

A source that serves parallel reads (the cluster) gets the per-target reports built while the
all-targets one is: each build spends much of its time folding rows in this process and the
rest waiting on the node, so building ``TARGET_BUILDS_AHEAD`` of them beside it keeps both busy
instead of adding the two up (docs/BENCHMARKS.md). The ndjson store builds them in turn: its
reads are this process's own CPU, which threads would only share out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pipeline.report.build import Options, build_report
from pipeline.report.filters import Filters
from pipeline.report.model import Report
from pipeline.report.plausible import plausible
from pipeline.report.rows import Source
from pipeline.report.shared_reads import SharedTargetReads

# Queries a report replays before it leaves the replay sections out (``--replay-limit``): a
# four-week study of 14 resolvers at a 15-minute cadence asks ≈ 37,600 queries per target.
REPLAY_LIMIT = 100_000

# Per-target reports built ahead, beside the all-targets one, on a source with
# ``parallel_reads`` > 1 (each build issues its own reads from that many threads).
TARGET_BUILDS_AHEAD = 2


def replay_left_out(queries: int, limit: int) -> str:
    """The one line a report carries instead of its replay sections."""
    return (f"replay sections (firewall models, resolver choice, EDNS Client Subnet evidence) "
            f"left out: the selection holds {queries:,} queries, over --replay-limit "
            f"{limit:,}; `edgewatch replay` computes them, or pass --replay-limit unlimited")


def build_by_target(source: Source, filters: Filters | None = None,
                    options: Options | None = None, models: Sequence[Any] = (),
                    replay_limit: int | None = REPLAY_LIMIT) -> Report:
    """The all-targets report with one report per target in ``targets`` (sorted by name); with
    a single target, that report itself carries the target's replay sections. The replay runs
    when the selection holds at most ``replay_limit`` queries (None: always)."""
    from pipeline.replay.build import replay_rows  # the replay imports the report's modules

    filters = filters or Filters()
    options = options or Options()
    selected = plausible(filters, options.now)
    with _Builds(source) as builds:
        source, names = _start_ahead(builds, source, filters, options, selected)
        overall = build_report(source, filters, options)
        if overall.window.days == 0:
            return overall
        replay = None
        if hasattr(source, "answer_rows"):
            queries = overall.overall.queries
            if replay_limit is not None and queries > replay_limit:
                overall.replay_note = replay_left_out(queries, replay_limit)
            else:
                replay = replay_rows(source.answer_rows(selected), models, options.interval_s,
                                     source.description, filters)
        if replay is not None:
            targets = [t.target for t in replay.targets]
        elif names is not None:
            targets = names
        elif hasattr(source, "target_names"):
            targets = source.target_names(selected)
        else:
            targets = []
        if len(targets) == 1:  # the summary is that target's report: no repetition
            if replay is not None:
                overall.replay = replay.targets[0]
                overall.replay.blocks = overall.blocks
            return overall
        for name in targets:
            one = builds.result(name, lambda n=name: _one(source, filters, options, n))
            if replay is not None:
                one.replay = replay.target(name)
                one.replay.blocks = one.blocks
            overall.targets.append(one)
    return overall


def _start_ahead(builds: _Builds, source: Source, filters: Filters, options: Options,
                 selected: Filters) -> tuple[Source, list[str] | None]:
    """Start the per-target reports before the all-targets one is built, on a source that
    reads in parallel. Returns the source every build then reads (``SharedTargetReads`` when
    there are several targets) and the target names read here (None: not read), which are
    those the report goes by (the same selection); one it names that was not started is built
    when it is reached."""
    if not builds.at_once or not hasattr(source, "target_names"):
        return source, None
    names = source.target_names(selected)
    if len(names) < 2:
        return source, names
    if hasattr(source, "target_network_rows"):
        source = SharedTargetReads(source, selected, options.interval_s)
    for name in names:
        builds.start(name, lambda n=name: _one(source, filters, options, n))
    return source, names


def _one(source: Source, filters: Filters, options: Options, name: str) -> Report:
    return build_report(source, dataclasses.replace(filters, targets=(name,)), options)


class _Builds:
    """Per-target reports started ahead on a pool (a source with parallel reads), or built
    when asked for (in turn). A build asked for that was not started runs there and then; one
    started and never asked for (no data after all) is waited for and dropped."""

    def __init__(self, source: Source) -> None:
        self.at_once = int(getattr(source, "parallel_reads", 1) or 1) > 1
        self._pool = (ThreadPoolExecutor(max_workers=TARGET_BUILDS_AHEAD,
                                         thread_name_prefix="report-target")
                      if self.at_once else None)
        self._started: dict[str, Future[Report]] = {}

    def __enter__(self) -> _Builds:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            for future in self._started.values():
                future.cancel()  # not begun yet: not worth beginning
            self._pool.shutdown(wait=True)

    def start(self, name: str, build: Callable[[], Report]) -> None:
        if self._pool is not None:
            self._started[name] = self._pool.submit(build)

    def result(self, name: str, build: Callable[[], Report]) -> Report:
        future = self._started.pop(name, None)
        return future.result() if future is not None else build()
