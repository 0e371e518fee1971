"""Every figure of the report against the synthetic history's truth, from both sources."""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime

import pytest
from report_synth import RESOLVERS, STEP_S, STEPS, History
from report_truth import Truth, wilson

from pipeline.report import Filters, build_report
from pipeline.report.model import ALL, GRANULARITIES, Report

pytestmark = pytest.mark.integration

SELECTED = Filters(targets=("api.example.test",), observers=("probe-1",))


@pytest.fixture
def report(source) -> Report:
    return build_report(source, SELECTED)


@pytest.fixture(scope="module")
def truth(history: History) -> Truth:
    return Truth(history)


def _figures(report: Report, name: str | None):
    return report.overall if name is None else report.resolver(name)


@pytest.mark.parametrize("name", [*RESOLVERS, None])
def test_counts_networks_and_daily_addresses(report: Report, truth: Truth, name) -> None:
    f = _figures(report, name)
    want = truth.counts(name)
    assert f.documents == want["documents"]
    assert f.successful == want["successful"]
    assert f.queries == want["queries"]
    assert f.networks.addresses == want["addresses"]
    assert f.networks.prefix24s == want["prefix24s"]
    assert f.networks.prefixes == want["prefixes"]
    assert f.networks.asns == want["asns"]
    assert f.networks.edge_hostnames == want["edge_hostnames"]
    assert f.daily_addresses == want["daily_addresses"]


def test_window_and_sampling_interval(report: Report, truth: Truth) -> None:
    assert report.window.days == truth.days == 4
    assert report.window.origin == "2026-03-02T00:00:00Z"
    assert report.window.interval_s == STEP_S
    assert report.window.interval_source == "inferred from runs"
    assert [f.name for f in report.resolvers] == truth.names()


@pytest.mark.parametrize("name", [*RESOLVERS, None])
def test_run_counts_and_kaplan_meier_lengths(report: Report, truth: Truth, name) -> None:
    rl = _figures(report, name).run_length
    runs, still_open = truth.run_counts(name)
    assert (rl.runs, rl.open, rl.closed) == (runs, still_open, runs - still_open)
    for p, point, bounds in ((0.5, rl.median_s, rl.median_bounds_s),
                             (0.9, rl.p90_s, rl.p90_bounds_s)):
        want, low, high = truth.run_quantiles(name, p)
        assert point == want
        assert bounds == [low, high]
    assert rl.curve[0] == [0.0, 1.0]
    assert all(a[1] >= b[1] for a, b in zip(rl.curve, rl.curve[1:], strict=False))


def test_run_lengths_match_the_scenario_within_one_interval(report: Report, truth: Truth
                                                             ) -> None:
    beta = report.resolver("beta").run_length
    for p, point, (low, high) in ((0.5, beta.median_s, beta.median_bounds_s),
                                  (0.9, beta.p90_s, beta.p90_bounds_s)):
        real = truth.true_segment_quantile("beta", p)
        assert real is not None and point is not None
        assert abs(point - real) <= STEP_S
        assert low <= real <= high
    # Runs that never ended keep the quantile unknown rather than made up.
    assert report.resolver("gamma").run_length.median_s is None
    assert report.resolver("gamma").run_length.open == 1


@pytest.mark.parametrize("name", [*RESOLVERS, None])
def test_failure_rates_with_wilson_intervals(report: Report, truth: Truth, name) -> None:
    got = {r.kind: r for r in _figures(report, name).failures}
    want = truth.failures(name)
    assert set(got) == set(want)
    for kind, (failures, trials) in want.items():
        r = got[kind]
        assert (r.failures, r.trials) == (failures, trials)
        assert r.rate == pytest.approx(failures / trials)
        assert r.ci95 == pytest.approx(list(wilson(failures, trials)), abs=1e-9)
        assert r.unit == ("query" if kind.startswith("dns") else "address check")


def test_gamma_failures_follow_the_schedule(report: Report) -> None:
    got = {r.kind: r for r in report.resolver("gamma").failures}
    # steps 0..383: i % 10 == 5 → 38 timeouts, i % 50 == 7 → 8 SERVFAILs
    assert got["dns.timeout"].failures == 38
    assert got["dns.servfail"].failures == 8
    assert got["dns.timeout"].trials == 384


@pytest.mark.parametrize("name", [*RESOLVERS, None])
def test_timing_percentiles(report: Report, truth: Truth, name) -> None:
    for t in _figures(report, name).timings:
        count, (p50, p90, p99) = truth.timing(name, t.field)
        assert (t.count, t.p50_ms, t.p90_ms, t.p99_ms) == (count, p50, p90, p99)


@pytest.mark.parametrize("name", [*RESOLVERS, None])
def test_most_stable_addresses(report: Report, truth: Truth, name) -> None:
    got = [(s.ip, s.runs, s.presence_s) for s in _figures(report, name).stable]
    assert got == truth.stable(name)[:10]
    if name in (None, "alpha"):  # present all four days in one run
        assert got[0] == ("198.51.100.10", 1, (383 * STEP_S))


@pytest.mark.parametrize("by", GRANULARITIES)
def test_coverage_is_the_smallest_possible_list(report: Report, truth: Truth, by: str) -> None:
    cov = report.coverage_by(by)
    assert cov.successful_checks == sum(truth.ok_by(by).values())
    assert cov.distinct == len(truth.ok_by(by))
    for level in cov.levels:
        k, best = truth.minimal_cover(by, level.target)
        assert level.entries == k
        assert level.allowed == pytest.approx(best)
    assert cov.curve[-1] == [float(cov.distinct), 1.0]


@pytest.mark.parametrize("by", GRANULARITIES)
def test_decay_day_by_day(report: Report, truth: Truth, by: str) -> None:
    decay = report.decay_by(by)
    assert [r.built_from_days for r in decay.rows] == list(range(1, truth.days))
    for row in decay.rows:
        want = truth.decay(by, row.built_from_days)
        assert row.shares == pytest.approx(want)
        below = [row.built_from_days + 1 + i for i, s in enumerate(want)
                 if s is not None and s < decay.threshold]
        assert row.first_below_day == (below[0] if below else None)
    # beta leaves its day-1 networks on day 3: every granularity goes stale that day.
    assert decay.rows[0].first_below_day == 3


def test_verdict_in_plain_words(report: Report, truth: Truth) -> None:
    v = report.verdict
    k99, share = truth.minimal_cover("ip", 0.99)
    assert v.feasible is False
    assert f"an allowlist of {k99} addresses" in v.headline
    assert f"{100 * share:.1f}%" in v.headline
    assert "fell below 99.0% on day 3" in v.headline


@pytest.mark.parametrize("filters", [
    SELECTED,
    Filters(),
    # days counted from an instant that is not midnight (a date_histogram offset in ES)
    Filters(start=datetime(2026, 3, 2, 6, 7, 30, tzinfo=UTC),
            end=datetime(2026, 3, 5, 13, 0, tzinfo=UTC), resolvers=("alpha", "beta")),
], ids=["selected", "everything", "offset-window"])
def test_both_sources_give_the_same_report(store_source, es_source, filters: Filters) -> None:
    a = build_report(store_source, filters).to_dict()
    b = build_report(es_source, filters).to_dict()
    for d in (a, b):
        d.pop("source")
        d.pop("generated_at")
    assert a["overall"]["documents"] > 0
    assert a == b


def _without_clock(report: Report) -> dict:
    """The report as a dict without its generation times (its own and its targets')."""
    d = report.to_dict()
    for one in [d, *d["targets"]]:
        one.pop("generated_at")
    return d


def test_reads_at_once_give_the_report_of_reads_in_turn(es_source, monkeypatch) -> None:
    """The cluster source issues a report's views from threads (``report.parallel``); the
    report must be the same whichever read finishes first, and the reads must overlap."""
    threads: set[str] = set()
    plain = es_source.client.search

    def search(**kw):
        threads.add(threading.current_thread().name)
        return plain(**kw)

    one = copy.copy(es_source)
    one.parallel_reads = 1
    in_turn = _without_clock(build_report(one, Filters()))
    monkeypatch.setattr(es_source.client, "search", search)
    at_once = _without_clock(build_report(es_source, Filters()))
    assert len({t for t in threads if t.startswith("report-read")}) >= 2
    assert in_turn["overall"]["documents"] > 0 and in_turn == at_once


def _first_pages(search, into: list[tuple[tuple[str, ...], str | None]]):
    """``search`` that also notes the source names of every composite's first page and the
    target its query names (None: none)."""

    def wrapped(**kw):
        g = (kw.get("aggs") or {}).get("g", {}).get("composite")
        if g and "after" not in g:
            clauses = (kw.get("query") or {}).get("bool", {}).get("filter", [])
            target = next((c["terms"]["dns.question.name"][0] for c in clauses
                           if "dns.question.name" in c.get("terms", {})), None)
            into.append((tuple(next(iter(s)) for s in g["sources"]), target))
        return search(**kw)

    return wrapped


def _reads(pages: list, first: tuple[str, ...]) -> list:
    return sorted(((keys, target) for keys, target in pages if keys[:len(first)] == first),
                  key=lambda read: (read[0], read[1] or ""))


def test_per_target_reports_built_ahead_equal_those_built_in_turn(es_source,
                                                                  monkeypatch) -> None:
    """On the cluster source the per-target reports are built on a pool beside the
    all-targets one (``report.by_target``), and the views every build repeats are read once
    by target and shared (``report.shared_reads``); the result must be the one built in
    turn, target by target, and the builds must really have run on the pool's threads."""
    from pipeline.report.by_target import build_by_target

    threads: set[str] = set()
    pages: list[tuple[tuple[str, ...], str | None]] = []
    plain = _first_pages(es_source.client.search, pages)

    def search(**kw):
        threads.add(threading.current_thread().name)
        return plain(**kw)

    one = copy.copy(es_source)
    one.parallel_reads = 1
    monkeypatch.setattr(es_source.client, "search", search)
    in_turn = _without_clock(build_by_target(one, Filters()))
    targets = ["api.example.test", "other.example.test"]
    # all targets, then each of the two: three reads of each view
    assert _reads(pages, ("ip", "prefix24")) == [
        (("ip", "prefix24", "prefix", "asn", "domain"), t) for t in [None, *targets]]
    assert len(_reads(pages, ("resolver", "bucket"))) == 3 * 2  # two timing fields
    assert {t for keys, t in pages if keys == ("day", "ip", "outcome")} == {None, *targets}
    for run_view in (("resolver", "ip"), ("resolver", "open", "length")):
        assert _reads(pages, run_view) == [(run_view, t) for t in [None, *targets]]
    pages.clear()
    threads.clear()
    ahead = _without_clock(build_by_target(es_source, Filters()))
    assert {t for t in threads if t.startswith("report-target")}
    # one read of each, by target, shared by the three reports
    networks = ("target", "ip", "prefix24", "prefix", "asn", "domain")
    assert _reads(pages, networks[:3]) == [(networks, None)]
    assert _reads(pages, ("target", "resolver", "bucket")) == [
        (("target", "resolver", "bucket"), None)] * 2
    assert not _reads(pages, ("resolver", "bucket"))
    day_groups = [keys for keys, _ in pages if keys[0] == "day" and keys[-1] == "outcome"]
    assert day_groups and set(day_groups) == {("day", "target", "ip", "outcome")}
    for run_view in (("resolver", "ip"), ("resolver", "open", "length")):  # the runs index
        assert _reads(pages, ("target", *run_view)) == [(("target", *run_view), None)]
    assert not _reads(pages, ("resolver", "ip"))
    # other.example.test's runs never closed: no sampling interval of its own, so its run
    # lengths are bucketed by 1 s, not the all-targets' interval, and read apart
    assert [t["window"]["interval_s"] for t in ahead["targets"]] == [900.0, None]
    assert _reads(pages, ("resolver", "open", "length")) == [
        (("resolver", "open", "length"), "other.example.test")]
    # the gap sample of each selection once: the all-targets one serves that build and the
    # run lengths' shared bucket
    assert _reads(pages, ("run",)) == [(("run", "duration", "observed"), t)
                                       for t in [None, *targets]]
    assert len(in_turn["targets"]) == 2 and in_turn == ahead


def test_a_cluster_with_a_lower_bucket_limit_gets_smaller_pages_and_the_same_report(
        es, es_source) -> None:
    """The reads keyed by target ask for pages of 50,000 groups; a cluster whose
    ``search.max_buckets`` is lower refuses such a page outright (a 400 naming its limit, as a
    real node answers). The source then pages at that limit, and the report is the same."""
    from pipeline.report.by_target import build_by_target

    one = copy.copy(es_source)
    one.parallel_reads = 1
    want = _without_clock(build_by_target(one, Filters()))
    es.cluster.put_settings(persistent={"search.max_buckets": 20})
    try:
        got = _without_clock(build_by_target(es_source, Filters()))
    finally:
        es.cluster.put_settings(persistent={"search.max_buckets": None})
    assert es_source.max_buckets == 20
    assert got == want


@pytest.mark.parametrize("error", [
    # the two shapes the devstack node gave (9.2.4): the shard refusing the page size, and
    # the reduce counting too many buckets
    {"root_cause": [{"type": "too_many_buckets_exception", "max_buckets": 5}],
     "type": "search_phase_execution_exception"},
    {"root_cause": [], "type": "search_phase_execution_exception",
     "caused_by": {"type": "too_many_buckets_exception", "max_buckets": 5}},
])
def test_the_bucket_limit_is_read_from_either_shape_of_refusal(error) -> None:
    from pipeline.report.es_source import _bucket_limit

    refused = Exception("400")
    refused.body = {"error": error, "status": 400}  # type: ignore[attr-defined]
    assert _bucket_limit(refused) == 5
    assert _bucket_limit(ValueError("other")) is None


def _stored(history: History, es, es_url: str, tmp_path_factory):
    """``history`` in a namespace of its own (set up like production), as a cluster source;
    its runs index is removed afterwards (data streams go with the session's node)."""
    import io
    import uuid

    from pipeline.commands.setup import setup
    from pipeline.config import ElasticsearchSettings
    from pipeline.es import names
    from pipeline.report import ElasticsearchSource

    ns = f"own{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp(ns)
    setup(ElasticsearchSettings(url=es_url, namespace=ns, spool_dir=tmp / "spool",
                                dead_letter_dir=tmp / "dead"), out=io.StringIO())
    history.index(es, names.check_data_stream(ns), names.runs_index(ns))
    yield ElasticsearchSource(es, namespace=ns, page_size=7)
    es.options(ignore_status=404).indices.delete(index=names.runs_index(ns))


@pytest.fixture(scope="module")
def late_target_source(es, es_url, history: History, tmp_path_factory):
    """The synthetic history in a namespace of its own, with the second target asked from
    its fourth check interval on (an hour after the selection's first check), and answered
    with another address at the selection's day boundaries: in that target's own days those
    checks close a day, in the selection's they open the next one."""
    other = History()
    for step in range(4, STEPS, 4):
        ip = "198.51.100.99" if step % (86_400 // STEP_S) == 0 else "203.0.113.200"
        other._answer("probe-1", "other.example.test", "alpha", step, [ip], None)
    late = copy.copy(history)
    late.checks = [d for d in history.checks
                   if d["dns.question.name"] != "other.example.test"] + other.checks
    late.runs = {rid: r for rid, r in history.runs.items()
                 if r.target != "other.example.test"} | other.runs
    yield from _stored(late, es, es_url, tmp_path_factory)


def test_a_target_whose_days_begin_later_reads_its_own_day_groups(late_target_source,
                                                                  monkeypatch) -> None:
    """The day groups are shared by target only when a target's report counts its days from
    the selection's origin. The second target's first check is an hour after the
    selection's here: its report must be the one built on its own, from a read of its own
    (a shared read puts the checks at the selection's day boundaries in the next day, and its
    daily address counts change)."""
    from pipeline.report.by_target import build_by_target

    source = late_target_source
    one = copy.copy(source)
    one.parallel_reads = 1
    in_turn = _without_clock(build_by_target(one, Filters()))
    pages: list[tuple[tuple[str, ...], str | None]] = []
    monkeypatch.setattr(source.client, "search", _first_pages(source.client.search, pages))
    ahead = _without_clock(build_by_target(source, Filters()))
    other = next(t for t in in_turn["targets"] if t["filters"]["targets"] == [
        "other.example.test"])
    assert other["window"]["origin"] != in_turn["window"]["origin"]
    assert max(other["overall"]["daily_addresses"]) == 2
    day_groups = {(keys, t) for keys, t in pages if keys[0] == "day" and keys[-1] == "outcome"}
    assert day_groups == {(("day", "target", "ip", "outcome"), None),
                          (("day", "ip", "outcome"), "other.example.test")}
    assert in_turn == ahead


@pytest.fixture(scope="module")
def shared_address_source(es, es_url, tmp_path_factory):
    """Two targets answered by one resolver in the same checks, sharing one address that is
    the last of the first target and the first of the second in address order: their groups
    of that address are neighbours in the keyed composite's order."""
    h = History()
    for step in range(0, 2 * 86_400 // STEP_S, 8):
        h._answer("probe-1", "a.example.test", "alpha", step, ["192.0.2.1", "192.0.2.2"], None)
        h._answer("probe-1", "b.example.test", "alpha", step, ["192.0.2.2", "203.0.113.1"],
                  None)
    yield from _stored(h, es, es_url, tmp_path_factory)


def test_day_groups_read_by_target_are_each_targets_own(shared_address_source) -> None:
    """The keyed read of the day groups gives each target the rows its own read gives, also
    for an address two targets share where their groups meet in composite order (a group is
    closed when the target changes, not only when the day, resolver or address does)."""
    from pipeline.report.evidence import extent_of
    from pipeline.report.plausible import plausible

    source = shared_address_source
    selected = plausible(Filters(), None)
    origin = extent_of(source, selected).origin
    keyed: dict[str | None, list] = {}
    for target, row in source.day_address_rows_by_target(selected, origin):
        keyed.setdefault(target, []).append(row)
    own = {t: list(source.address_rows(plausible(Filters(targets=(t,)), None), origin))
           for t in ("a.example.test", "b.example.test")}
    assert any(r.ip == "192.0.2.2" for r in own["a.example.test"])
    assert any(r.ip == "192.0.2.2" for r in own["b.example.test"])
    assert keyed == own


def test_address_rows_are_one_per_group_as_in_the_store(es_source, store_source) -> None:
    """The cluster reads the outcome as a composite source and sums a group's buckets, which
    may straddle pages (page size 7 here): one row per (day, resolver, address), the same
    rows as the ndjson store's, successes counted apart."""
    from pipeline.report.evidence import extent_of
    from pipeline.report.plausible import plausible

    selected = plausible(Filters(), None)
    origin = extent_of(store_source, selected).origin

    def rows(source) -> list:
        return sorted(source.address_rows(selected, origin),
                      key=lambda r: (r.day, r.resolver, r.ip))

    got, want = rows(es_source), rows(store_source)
    assert len({(r.day, r.resolver, r.ip) for r in got}) == len(got)
    assert any(0 < r.ok < r.documents for r in want)  # groups that mix outcomes
    assert got == want


def test_address_groups_are_read_one_resolver_at_a_time(es_source, monkeypatch) -> None:
    """Each composite page visits every matching check again, so the day × resolver × address
    groups are read per resolver (one page each here), not paged over all checks at once."""
    composites: list[dict] = []
    plain = es_source.client.search

    def search(**kw):
        if "g" in (kw.get("aggs") or {}) and "composite" in kw["aggs"]["g"]:
            composites.append(kw["query"])
        return plain(**kw)

    wide = copy.copy(es_source)
    wide.page_size = 10_000
    monkeypatch.setattr(es_source.client, "search", search)
    span = build_report(wide, Filters()).window
    origin = datetime.fromisoformat(span.origin.replace("Z", "+00:00"))
    composites.clear()
    rows = list(wide.address_rows(Filters(), origin))
    resolvers = sorted({r.resolver for r in rows})
    assert len(resolvers) >= 2 and len(composites) == len(resolvers)
    named = [next(c["term"]["edgewatch.resolver.name"] for c in q["bool"]["filter"]
                  if "term" in c and "edgewatch.resolver.name" in c["term"])
             for q in composites]
    assert named == resolvers


def test_days_count_from_the_window_start(source, history: History) -> None:
    start = datetime(2026, 3, 2, 6, 7, 30, tzinfo=UTC)
    report = build_report(source, Filters(start=start, targets=SELECTED.targets,
                                          observers=SELECTED.observers))
    truth = Truth(history, start=start)
    assert report.window.origin == "2026-03-02T06:07:30Z"
    assert report.window.days == truth.days == 4
    assert report.overall.daily_addresses == truth.counts(None)["daily_addresses"]
    assert report.decay_by("ip").rows[1].shares == pytest.approx(truth.decay("ip", 2))


def test_resolver_and_time_filters(source, history: History) -> None:
    start = datetime(2026, 3, 4, tzinfo=UTC)
    f = Filters(start=start, targets=SELECTED.targets, observers=SELECTED.observers,
                resolvers=("beta",))
    report = build_report(source, f)
    truth = Truth(history, start=start, resolvers=("beta",))
    assert [r.name for r in report.resolvers] == ["beta"]
    assert report.window.origin == "2026-03-04T00:00:00Z"
    assert report.window.days == truth.days == 2
    want = truth.counts(None)
    assert report.overall.networks.addresses == want["addresses"] == 2
    assert report.overall.daily_addresses == want["daily_addresses"]
    assert (report.overall.run_length.runs, report.overall.run_length.open) == \
        truth.run_counts(None)
    assert report.coverage_by("prefix").distinct == 1
    assert report.decay_by("ip").rows[0].first_below_day is None
    assert report.verdict.feasible is True and report.verdict.by == "ip"


def test_without_filters_the_noise_is_counted(source, history: History) -> None:
    report = build_report(source, Filters())
    truth = Truth(history, observers=(), targets=())
    assert report.overall.networks.addresses == truth.counts(None)["addresses"] == 12
    assert report.overall.documents == len(history.checks)
    assert report.overall.run_length.runs == len(history.runs)


def test_an_empty_selection_reports_nothing_to_judge(source) -> None:
    report = build_report(source, Filters(targets=("nothing.example",)))
    assert report.window.days == 0
    assert report.overall.documents == 0
    assert report.resolvers == []
    assert report.verdict.feasible is None
    assert report.overall.name == ALL


@pytest.mark.parametrize("filters", [SELECTED, Filters()], ids=["selected", "everything"])
def test_a_store_written_twice_and_damaged_reports_as_elasticsearch(
    store_dir, es_source, tmp_path, filters: Filters,
) -> None:
    """Two writers (every line twice) and a bad disk (lines that are no document) in the store;
    Elasticsearch holds each _id once: the figures must not tell the two apart."""
    import shutil

    from pipeline.report import StoreSource

    damaged = tmp_path / "store"
    shutil.copytree(store_dir, damaged)
    for path in sorted(damaged.glob("*.ndjson")):
        lines = path.read_bytes().splitlines(keepends=True)
        garbage = [b"{not json\n", b"[1, 2]\n"]
        path.write_bytes(b"".join([*lines[:5], *garbage, *lines[5:], *lines]) + b'{"_id": "cut-')
    store = StoreSource(damaged)
    a = build_report(store, filters).to_dict()
    b = build_report(es_source, filters).to_dict()
    assert a["data"]["duplicate_lines"] > 0
    assert a["data"]["skipped_lines"] == 3 * len(list(damaged.glob("*.ndjson")))
    for d in (a, b):
        for key in ("source", "generated_at", "data"):
            d.pop(key)
    assert a["overall"]["documents"] > 0
    assert a == b
