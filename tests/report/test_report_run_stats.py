"""The grouped run figures against the per-run ones they replace (``pipeline.report.run_stats``).

The report no longer reads one row per run: lengths arrive rounded to the nearest multiple of
the sampling interval and counted per (resolver, open, length). These tests pin down what that
costs: nothing when lengths are multiples of the interval (the lab's and the synthetic
history's case), and at most half an interval on a quantile otherwise (exact without
censoring: rounding is monotone, so the rounded estimate's quantile is the rounded quantile;
with censored runs in the same bucket as ended ones the bound is the one measured here).
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from report_synth import STEP_S, History
from report_truth import Truth, km_quantile

from pipeline.report import stats
from pipeline.report.rows import RunRow
from pipeline.report.run_stats import (
    RunStats,
    bucket_length,
    fold_into,
    fold_runs,
    gap_sample,
    half_bucket_length,
)


@pytest.mark.parametrize("interval", [1.0, 7.0, 120.0, 900.0, 37.5])
def test_half_width_buckets_give_the_nearest_multiple(interval: float) -> None:
    """What Elasticsearch's composite histogram (no offset) returns, merged in pairs, equals
    rounding to the nearest multiple, for every whole-second length up to 40 intervals."""
    half = interval / 2
    for length in range(int(40 * interval) + 1):
        key = (length // half) * half  # the histogram source's key: floor(value/width)·width
        assert half_bucket_length(key, interval) == bucket_length(length, interval), length


def test_weighted_kaplan_meier_matches_scipy() -> None:
    rng = random.Random(5)
    for _ in range(200):
        events = [float(rng.randint(0, 40)) for _ in range(rng.randint(1, 80))]
        censored = [float(rng.randint(0, 40)) for _ in range(rng.randint(0, 40))]
        want = stats.kaplan_meier(events, censored)
        got = stats.kaplan_meier_counts(Counter(events), Counter(censored))
        assert want is not None and got is not None
        assert got.times == want.times
        assert got.survival == pytest.approx(want.survival, abs=1e-12)
        for p in (0.1, 0.5, 0.9):
            assert got.quantile(p) == want.quantile(p)
    assert stats.kaplan_meier_counts({}, {}) is None
    assert stats.kaplan_meier_counts({}, {7.0: 2, 9.0: 1}) == stats.kaplan_meier([], [7.0, 9.0])


def _runs(lengths: list[tuple[float, bool]]) -> list[RunRow]:
    return [RunRow(run_id=f"run-{i:05d}", resolver=f"r{i % 3}", ip=f"127.0.0.{i % 50}",
                   open=is_open, duration_s=length, observed_s=max(0.0, length - STEP_S))
            for i, (length, is_open) in enumerate(lengths)]


def _grouped(runs: list[RunRow], interval: float) -> dict[str, RunStats]:
    lengths, addresses = fold_runs(runs, interval)
    out: dict[str, RunStats] = {}
    fold_into(out, "*", iter(lengths), iter(addresses))
    return out


def test_bucketed_equals_exact_when_lengths_are_multiples_of_the_interval() -> None:
    rng = random.Random(11)
    runs = _runs([(STEP_S * rng.randint(1, 60), rng.random() < 0.2) for _ in range(3000)])
    grouped = _grouped(runs, STEP_S)["*"]
    exact = stats.kaplan_meier([r.duration_s for r in runs if not r.open],
                               [r.duration_s for r in runs if r.open])
    bucketed = stats.kaplan_meier_counts(grouped.closed, grouped.censored)
    assert exact is not None and bucketed is not None
    assert bucketed.times == exact.times
    assert bucketed.survival == pytest.approx(exact.survival, abs=1e-12)
    assert grouped.runs == len(runs)
    # The per-address totals are the same sums as over the runs themselves.
    assert sum(grouped.presence.values()) == sum(r.duration_s for r in runs)
    assert sum(grouped.count.values()) == len(runs)


def _jittered(truth: Truth, seed: int) -> tuple[list[float], list[float]]:
    """The synthetic history's run lengths (multiples of STEP_S), each moved by a random
    jitter of less than half an interval, as scheduling delays would move them."""
    rng = random.Random(seed)
    runs = truth.runs_of(None)

    def jitter(x: float) -> float:
        return max(0.0, x + rng.randint(-int(STEP_S / 2) + 1, int(STEP_S / 2) - 1))

    closed = [jitter((r.end - r.start).total_seconds()) for r in runs if not r.open]
    censored = [jitter((r.last_seen - r.start).total_seconds()) for r in runs if r.open]
    return closed, censored


@pytest.mark.parametrize("seed", range(5))
def test_bucketed_quantiles_stay_within_half_an_interval_on_the_synthetic_truth(
    history: History, seed: int,
) -> None:
    truth = Truth(history)
    closed, censored = _jittered(truth, seed)
    assert closed and censored
    rounded = stats.kaplan_meier_counts(Counter(bucket_length(x, STEP_S) for x in closed),
                                        Counter(bucket_length(x, STEP_S) for x in censored))
    assert rounded is not None
    for p in (0.25, 0.5, 0.75, 0.9):
        exact = km_quantile(closed, censored, p)
        got = rounded.quantile(p)
        assert (exact is None) == (got is None), p
        if exact is not None:
            assert abs(got - exact) <= STEP_S / 2, (p, got, exact)
        # The textbook estimate on the rounded lengths agrees with the weighted one.
        assert got == km_quantile([bucket_length(x, STEP_S) for x in closed],
                                  [bucket_length(x, STEP_S) for x in censored], p)
    # Without censoring the bound holds by construction (rounding is monotone).
    only = stats.kaplan_meier_counts(Counter(bucket_length(x, STEP_S) for x in closed), {})
    assert only is not None
    for p in (0.1, 0.5, 0.9):
        exact = km_quantile(closed, [], p)
        assert exact is not None and abs(only.quantile(p) - exact) <= STEP_S / 2


def test_the_gap_sample_takes_the_closed_runs_with_the_smallest_ids() -> None:
    runs = _runs([(STEP_S * (i % 7 + 1), i % 4 == 0) for i in range(40)])
    sample = gap_sample(reversed(runs), limit=5)
    closed = sorted((r for r in runs if not r.open), key=lambda r: r.run_id)[:5]
    assert sample == [r.duration_s - r.observed_s for r in closed]
