"""The estimators on hand-checked numbers."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.report import stats
from pipeline.report.networks import attribute, derived_prefix24, host_network
from pipeline.report.rows import NetworkRow


def test_kaplan_meier_with_censoring_by_hand() -> None:
    # events 1, 2, 4; censored 3, 5 → S: 4/5 after 1, 3/5 after 2, 3/5·1/2 = 0.3 after 4
    km = stats.kaplan_meier([1, 2, 4], [3, 5])
    assert km is not None
    assert km.times == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert km.survival == pytest.approx((0.8, 0.6, 0.6, 0.3, 0.3))
    assert km.quantile(0.5) == 4.0
    assert km.quantile(0.2) == 1.0
    assert km.quantile(0.9) is None  # the curve never gets down to 10%


def test_kaplan_meier_without_events_or_runs() -> None:
    assert stats.kaplan_meier([], []) is None
    km = stats.kaplan_meier([], [7.0, 9.0])
    assert km is not None and km.quantile(0.5) is None


def test_wilson_interval_matches_the_textbook_value() -> None:
    low, high = stats.wilson(8, 384)
    assert (low, high) == pytest.approx((0.0105937, 0.0405653), abs=1e-6)
    assert stats.wilson(0, 0) is None
    assert stats.wilson(0, 10)[0] == 0.0


@pytest.mark.parametrize("confidence", [0.95, 0.99, 0.5])
def test_wilson_equals_scipys_on_a_grid_with_its_edges(confidence: float) -> None:
    """The closed formula against scipy's ``proportion_ci(method="wilson")``, the reference:
    no successes, all successes, one trial, and counts as large as a 10M-check report's."""
    from scipy.stats import binomtest

    cases = [(0, 1), (1, 1), (0, 10), (10, 10), (1, 10), (8, 384), (5, 2_000_000),
             (29_914, 9_980_184), (9_980_183, 9_980_184)] + [
        (k, n) for n in (2, 3, 7, 50, 999) for k in range(0, n + 1, max(1, n // 6))]
    for k, n in cases:
        ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
        assert stats.wilson(k, n, confidence) == pytest.approx(
            (ci.low, ci.high), rel=1e-12, abs=1e-15), (k, n)


def test_the_report_command_does_not_import_scipy(store_dir) -> None:
    """A fresh process prints a whole report (failure intervals, Kaplan–Meier, every section)
    from a store without importing scipy or numpy: their import alone was about a second of
    every `edgewatch report`."""
    import subprocess
    import sys

    code = ("import sys; from pipeline.cli import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('scipy', 'numpy') if m in sys.modules), file=sys.stderr); "
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "report", "--store", str(store_dir),
                           "--no-progress"], capture_output=True, text=True, check=True)
    assert "Failures by kind (95% Wilson interval)" in proc.stdout and "95% CI" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def test_nearest_rank_percentile_on_buckets() -> None:
    buckets = {100: 5, 200: 4, 900: 1}
    assert stats.histogram_percentile(buckets, 0.5) == 100
    assert stats.histogram_percentile(buckets, 0.51) == 200
    assert stats.histogram_percentile(buckets, 0.9) == 200
    assert stats.histogram_percentile(buckets, 0.99) == 900
    assert stats.histogram_percentile({}, 0.5) is None


def test_ranking_and_smallest_cover() -> None:
    r = stats.rank({"b": 5, "a": 5, "c": 89, "d": 1, "z": 0})
    assert r.entries == (("c", 89), ("a", 5), ("b", 5), ("d", 1))
    assert r.total == 100
    assert r.smallest_for(0.5) == 1
    assert r.smallest_for(0.94) == 2
    assert r.smallest_for(0.99) == 3
    assert r.smallest_for(0.999) == 4
    assert stats.rank({}).smallest_for(0.5) == 0


def test_decay_shares() -> None:
    days = [Counter({"a": 3}), Counter({"a": 1, "b": 3}), Counter(), Counter({"b": 2})]
    assert stats.decay_shares(days, 1) == [0.25, None, 0.0]
    assert stats.decay_shares(days, 2) == [None, 1.0]


def test_network_fallbacks() -> None:
    assert derived_prefix24("198.51.100.77") == "198.51.100.0/24"
    assert derived_prefix24("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert host_network("2001:db8::1") == "2001:db8::1/128"


def test_attribution_belongs_to_the_address() -> None:
    rows = [
        NetworkRow("198.51.100.7", "198.51.100.0/24", "198.51.100.0/23", 64500, "a.example", 5),
        NetworkRow("198.51.100.7", "198.51.100.0/24", "198.51.100.0/22", 64501, None, 2),
        NetworkRow("198.51.100.7", "198.51.100.0/24", "198.51.100.0/23", 64500, "b.example", 1),
        NetworkRow("203.0.113.9", None, None, None, None, 3),
    ]
    attr = attribute(rows)
    a = attr["198.51.100.7"]
    assert (a.prefix, a.asn, a.prefix_known) == ("198.51.100.0/23", 64500, True)  # 6 votes to 2
    assert a.domains == ("a.example", "b.example")
    b = attr["203.0.113.9"]
    assert (b.prefix24, b.prefix, b.prefix_known) == ("203.0.113.0/24", "203.0.113.9/32", False)
