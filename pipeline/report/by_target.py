"""Per target first (issue 15, item 5): a firewall rule is per API.

``build_by_target`` builds the whole report once per target (verdict, coverage, decay, failures,
the blocks and every replay section of that target) and once for all targets together; the
all-targets report carries the per-target ones in ``targets`` and is shown below them as a
summary. A demo that mixes a production name with a staging name whose edges are broken on
purpose then reads per name, not as one blended failure rate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from pipeline.report.build import Options, build_report
from pipeline.report.filters import Filters
from pipeline.report.model import Report
from pipeline.report.plausible import plausible
from pipeline.report.rows import Source


def build_by_target(source: Source, filters: Filters | None = None,
                    options: Options | None = None, models: Sequence[Any] = ()) -> Report:
    """The all-targets report with one report per target in ``targets`` (sorted by name); with
    a single target, that report itself carries the target's replay sections."""
    from pipeline.replay.build import replay_rows  # the replay imports the report's modules

    filters = filters or Filters()
    options = options or Options()
    overall = build_report(source, filters, options)
    if overall.window.days == 0 or not hasattr(source, "answer_rows"):
        return overall
    rows = source.answer_rows(plausible(filters, options.now))
    replay = replay_rows(rows, models, options.interval_s, source.description, filters)
    if len(replay.targets) == 1:  # the summary is that target's report: no repetition
        overall.replay = replay.targets[0]
        overall.replay.blocks = overall.blocks
        return overall
    for t in replay.targets:
        one = build_report(source, dataclasses.replace(filters, targets=(t.target,)), options)
        t.blocks = one.blocks
        one.replay = t
        overall.targets.append(one)
    return overall
