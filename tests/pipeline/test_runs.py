"""The run semantics (``pipeline/runs.py``; docs/DOCUMENTS.md, "Run summary"), checked case by
case and against an independent model."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.runs import Poll, RunTracker, run_id

T0 = datetime(2026, 3, 2, tzinfo=UTC)
STEP = timedelta(minutes=15)


def poll(tracker: RunTracker, i: int, answer: set[str] | None, resolver: str = "r1"):
    """answer None = failed query (gap)."""
    return tracker.observe(Poll("obs", "api.lab.test", "A", resolver, "127.53.1.1", T0 + i * STEP,
                                answer is not None, answer or ()))


def test_return_after_absence_is_a_new_run_with_a_new_id() -> None:
    t = RunTracker()
    a1, _ = poll(t, 0, {"10.0.0.1"})
    poll(t, 1, {"10.0.0.1"})
    _, changed = poll(t, 2, {"10.0.0.2"})
    closed = [r for r in changed if r.key.address == "10.0.0.1"]
    assert closed and closed[0].end == T0 + 2 * STEP and closed[0].checks == 2
    a4, _ = poll(t, 4, {"10.0.0.1"})
    assert a4["10.0.0.1"].run_id != a1["10.0.0.1"].run_id
    assert a4["10.0.0.1"].seq == 1 and a4["10.0.0.1"].start == T0 + 4 * STEP


def test_failed_query_is_a_gap_neither_extending_nor_ending() -> None:
    t = RunTracker()
    a0, _ = poll(t, 0, {"10.0.0.1"})
    _, changed = poll(t, 1, None)
    assert [(r.gaps, r.open, r.last_seen) for r in changed] == [(1, True, T0)]
    a2, changed = poll(t, 2, {"10.0.0.1"})
    assert a2["10.0.0.1"].run_id == a0["10.0.0.1"].run_id
    assert a2["10.0.0.1"].seq == 2
    run = changed[0]
    assert (run.checks, run.gaps, run.last_seen) == (2, 1, T0 + 2 * STEP)


def test_resolvers_are_independent() -> None:
    t = RunTracker()
    poll(t, 0, {"10.0.0.1"}, "r1")
    poll(t, 0, {"10.0.0.1"}, "r2")
    _, changed = poll(t, 1, {"10.0.0.9"}, "r2")
    assert {(r.key.resolver, r.key.address, r.open) for r in changed} == {
        ("r2", "10.0.0.9", True), ("r2", "10.0.0.1", False)}
    assert {r.key.resolver for r in t.open_runs() if r.key.address == "10.0.0.1"} == {"r1"}


def test_ids_are_deterministic_and_versions_grow() -> None:
    t1, t2 = RunTracker(), RunTracker()
    versions = []
    for i, ans in enumerate([{"a"}, None, {"a", "b"}, {"b"}]):
        x, c1 = poll(t1, i, ans)
        y, _ = poll(t2, i, ans)
        assert x == y
        versions += [r.version for r in c1 if r.key.address == "a"]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_state_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite3"
    t = RunTracker(db)
    a0, _ = poll(t, 0, {"10.0.0.1", "10.0.0.2"})
    t.commit()
    t.close()
    t = RunTracker(db)
    a1, _ = poll(t, 1, {"10.0.0.1"})
    assert a1["10.0.0.1"].run_id == a0["10.0.0.1"].run_id and a1["10.0.0.1"].seq == 2
    assert {r.key.address for r in t.open_runs()} == {"10.0.0.1"}


def test_rollback_forgets_an_undelivered_cycle(tmp_path: Path) -> None:
    t = RunTracker(tmp_path / "r.sqlite3")
    poll(t, 0, {"a"})
    t.commit()
    poll(t, 1, {"b"})
    t.rollback()
    assert {r.key.address for r in t.open_runs()} == {"a"}


def _model(answers: list[set[str] | None]) -> list[tuple[str, int, int | None, int, int]]:
    """Independent restatement of the run rules: (address, start, end, checks, gaps) per run."""
    runs, open_ = [], {}
    for i, ans in enumerate(answers):
        if ans is None:
            for r in open_.values():
                r[4] += 1
            continue
        for addr in list(open_):
            if addr not in ans:
                r = open_.pop(addr)
                r[2] = i
                runs.append(tuple(r))
        for addr in ans:
            if addr in open_:
                open_[addr][3] += 1
            else:
                open_[addr] = [addr, i, None, 1, 0]
    return sorted(runs + [tuple(r) for r in open_.values()], key=lambda r: (r[1], r[0]))


def test_matches_an_independent_model_on_random_histories() -> None:
    rng = random.Random(7)
    pool = [f"10.0.0.{i}" for i in range(6)]
    for _ in range(50):
        answers = [None if rng.random() < 0.15 else set(rng.sample(pool, rng.randint(1, 3)))
                   for _ in range(40)]
        t = RunTracker()
        final = {}
        for i, ans in enumerate(answers):
            _, changed = poll(t, i, ans)
            for r in changed:
                final[r.id] = r
        got = sorted(((r.key.address, int((r.start - T0) / STEP),
                       None if r.end is None else int((r.end - T0) / STEP), r.checks, r.gaps)
                      for r in final.values()), key=lambda r: (r[1], r[0]))
        assert got == _model(answers)
        for r in final.values():
            assert r.id == run_id(r.key, r.start)
