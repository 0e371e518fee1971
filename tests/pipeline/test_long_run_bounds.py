"""What a months-long ``edgewatch run`` keeps must not grow with the number of cycles.

The 14-day soak (bench/bench_soak.py, docs/BENCHMARKS.md) found the process growing by ≈ 6 KiB
a cycle: the closing summary remembered every check it had ever counted, and the scheduler kept
every cycle's figures. These tests run many cycles' worth of records and cycles through both
and assert the size of what they hold, which a regression would make grow again.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pipeline.cycle import CycleStats
from pipeline.documents import Record
from pipeline.scheduler import Outcome
from pipeline.sinks.summary import SummarySink

RESOLVERS = [f"lab-r{i}" for i in range(14)]
TARGETS = ("a.lab.test", "b.lab.test")
CYCLES = 300


def _cycle(n: int) -> list[Record]:
    """One cycle: every resolver asked for every target, two addresses per answer (two
    documents of the same check), plus one failed query without an address."""
    out = []
    for r in RESOLVERS:
        for t in TARGETS:
            check = f"check-{n}-{t}"
            for ip in ("127.60.0.1", f"127.60.{n % 7}.2"):
                out.append(Record("check", f"{check}-{r}-{ip}", {
                    "edgewatch.check.id": check, "edgewatch.resolver.name": r,
                    "destination.ip": ip, "edgewatch.run.id": f"run-{r}-{ip}"}))
    out.append(Record("check", f"fail-{n}", {
        "edgewatch.check.id": f"check-{n}-fail", "edgewatch.resolver.name": RESOLVERS[0],
        "error.type": "dns.timeout"}))
    return out


def test_the_closing_summary_remembers_two_cycles_of_checks_not_all_of_them() -> None:
    sink = SummarySink()
    per_cycle = len(RESOLVERS) * len(TARGETS) + 1
    for n in range(CYCLES):
        asyncio.run(sink.write(_cycle(n)))
        assert len(sink._checks_seen) + len(sink._checks_before) <= 2 * per_cycle
    # ...and still counts each check once although it has one document per address.
    checks = {name: fig.checks for name, fig in sink.by_resolver.items()}
    assert checks == {r: CYCLES * len(TARGETS) + (CYCLES if r == RESOLVERS[0] else 0)
                      for r in RESOLVERS}
    assert sink.by_resolver[RESOLVERS[0]].failures == {"dns.timeout": CYCLES}
    assert sink.documents == CYCLES * per_cycle + CYCLES * len(RESOLVERS) * len(TARGETS)
    # Addresses and runs are bounded by the distinct ones seen (7 + 1 addresses here).
    assert all(len(fig.addresses) == 8 for fig in sink.by_resolver.values())


def test_the_scheduler_outcome_counts_cycles_instead_of_keeping_them() -> None:
    outcome = Outcome()
    for n in range(CYCLES):
        outcome.add(CycleStats(started=datetime(2026, 3, 2, tzinfo=UTC), delivered=n % 50 != 0))
    assert (outcome.done, outcome.undelivered) == (CYCLES, CYCLES // 50)
    assert outcome.last is not None
    assert not any(isinstance(v, list | dict | set | tuple) for v in vars(outcome).values())


def test_the_closing_summary_forgets_runs_that_ended_but_still_counts_them() -> None:
    sink = SummarySink()
    for n in range(CYCLES):  # one address per cycle, a new run each time; the previous ends
        records = [Record("check", f"c{n}", {
            "edgewatch.check.id": f"check-{n}", "edgewatch.resolver.name": "lab-r0",
            "destination.ip": "127.60.0.1", "edgewatch.run.id": f"run-{n}"})]
        if n:
            records.append(Record("run", f"run-{n - 1}", {
                "edgewatch.run.id": f"run-{n - 1}", "edgewatch.resolver.name": "lab-r0",
                "edgewatch.run.open": False}, version=3))
        asyncio.run(sink.write(records))
        assert len(sink.by_resolver["lab-r0"].runs) == 1  # only the open one is remembered
    fig = sink.by_resolver["lab-r0"]
    assert len(fig.runs) + fig.closed_runs == CYCLES
    assert f" {CYCLES}  " in sink.render().splitlines()[1]
