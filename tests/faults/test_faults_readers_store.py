"""The ndjson store reader under corrupt, duplicated and implausibly dated lines (no cluster)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from faults_readers_helpers import (
    SELECTED,
    append_raw,
    check_files,
    clean_store,
    dumps,
    duplicate_every_line,
    figures,
    first_doc,
    insert_line,
    report_of,
    run_files,
)

from pipeline.config import Clock
from pipeline.report import Filters, Options, build_report, render_text
from pipeline.report.allowlist import build_allowlist
from pipeline.report.plausible import FLOOR, ceiling, clock_now, plausible
from pipeline.report.progress import Progress
from pipeline.report.store_lines import StoreLineError
from pipeline.report.store_source import StoreSource


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("readers")
    store = clean_store(root, root / "reference")
    report, _ = report_of(store)
    return root, figures(report)


@pytest.fixture
def store(clean, tmp_path: Path) -> Path:
    return clean_store(clean[0], tmp_path / "store")


def _check(store: Path) -> dict:
    return first_doc(check_files(store)[1])


# Each kind of bad check line: what is written, and the reason the warning must give.
CORRUPT = {
    "invalid JSON": (lambda d: b'{"@timestamp": "2026-03-03T00:00:00Z", '
                               b'"edgewatch.resolver.name": ',
                     "invalid JSON"),
    "binary garbage": (lambda d: b"\x00\xff\xfe garbage \x00", "invalid JSON"),
    "a JSON array": (lambda d: dumps([d]), "not a JSON object but list"),
    "a JSON number": (lambda d: b"42", "not a JSON object but int"),
    "a JSON string": (lambda d: b'"hello"', "not a JSON object but str"),
    "no _id": (lambda d: dumps({k: v for k, v in d.items() if k != "_id"}), "_id is missing"),
    "no resolver": (lambda d: dumps({**d, "_id": "x1", "edgewatch.resolver.name": None}),
                    "edgewatch.resolver.name is missing"),
    "timestamp not a date": (lambda d: dumps({**d, "_id": "x2", "@timestamp": "yesterday"}),
                             "@timestamp is not a date"),
    "timestamp a number": (lambda d: dumps({**d, "_id": "x3", "@timestamp": 1772409600}),
                           "@timestamp is not a date"),
    "address not an IP": (lambda d: dumps({**d, "_id": "x4", "destination.ip": "999.1.2.3"}),
                          "destination.ip is not an IP address"),
    "count a string": (lambda d: dumps({**d, "_id": "x5", "edgewatch.dns.answer_count": "two"}),
                       "edgewatch.dns.answer_count is not an integer"),
    "asn a boolean": (lambda d: dumps({**d, "_id": "x6", "destination.as.number": True}),
                      "destination.as.number is not an integer"),
    "a run summary in a checks file": (
        lambda d: dumps({**d, "_id": "x7", "event.dataset": "edgewatch.run"}),
        "event.dataset is 'edgewatch.run'"),
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_one_corrupt_check_line_is_skipped_named_and_counted(clean, store: Path,
                                                             kind: str) -> None:
    make, reason = CORRUPT[kind]
    path = check_files(store)[1]
    line = insert_line(path, 17, make(_check(store)))
    report, source = report_of(store)
    assert figures(report) == clean[1]
    assert report.data.skipped_lines == 1
    [warning] = source.warnings()
    assert str(path) in warning and f"line {line}: {reason}" in warning
    assert "skipped 1 of" in warning
    assert "skipped 1 unreadable store line" in render_text(report)


def test_a_truncated_last_line_after_power_loss(clean, store: Path) -> None:
    path = check_files(store)[-1]
    whole = path.read_bytes().splitlines()[-1]
    line = append_raw(path, whole[: len(whole) // 2])  # the half-written line, no newline
    report, source = report_of(store)
    assert figures(report) == clean[1]
    [warning] = source.warnings()
    assert f"line {line}: truncated last line (no newline at the end)" in warning


def test_one_warning_per_file_with_the_first_lines_and_the_total(clean, store: Path) -> None:
    a, b = check_files(store)[0], check_files(store)[2]
    for n in (5, 9, 30, 31, 200):
        insert_line(a, n, b"{broken")
    insert_line(b, 3, b"[]")
    report, source = report_of(store)
    assert figures(report) == clean[1]
    assert report.data.skipped_lines == 6
    warnings = source.warnings()
    assert len(warnings) == 2  # read several times (window, then the scan): still one per file
    assert warnings[0].startswith(f"{a}: skipped 5 of ")
    assert "line 5: invalid JSON; line 9: invalid JSON; line 30: invalid JSON, …" in warnings[0]
    assert warnings[1].startswith(f"{b}: skipped 1 of ")


def test_corrupt_run_summaries_are_skipped(clean, store: Path) -> None:
    path = run_files(store)[0]
    doc = first_doc(path)
    insert_line(path, 2, dumps({**doc, "edgewatch.run.duration.s": "long"}))
    insert_line(path, 3, dumps({**doc, "edgewatch.run.version": None}))
    insert_line(path, 4, dumps({**doc, "edgewatch.run.last_seen": "not a date"}))
    report, source = report_of(store)
    assert figures(report) == clean[1]
    assert report.data.skipped_lines == 3
    assert "line 2: edgewatch.run.duration.s is not a number" in source.warnings()[0]


def test_strict_makes_the_first_bad_line_an_error(store: Path) -> None:
    path = check_files(store)[1]
    insert_line(path, 4, b"not json")
    with pytest.raises(StoreLineError) as exc:
        report_of(store, strict=True)
    assert str(exc.value) == f"{path} line 4: invalid JSON"


def test_allowlist_survives_a_corrupt_line_and_says_so(store: Path) -> None:
    clean_list = build_allowlist(StoreSource(store), plausible(SELECTED), 0.99, "ip")
    insert_line(check_files(store)[0], 2, b"\x00")
    damaged = build_allowlist(StoreSource(store), plausible(SELECTED), 0.99, "ip")
    assert damaged.entries == clean_list.entries
    assert any("skipped 1 unreadable store line" in line for line in damaged.header())


# -- duplicates ------------------------------------------------------------------------------


def test_every_line_written_twice_gives_the_clean_figures(clean, store: Path) -> None:
    added = duplicate_every_line(store)
    report, source = report_of(store)
    assert figures(report) == clean[1]
    # every check line repeated, and every run snapshot repeated with its version
    assert report.data.duplicate_lines == source.duplicate_lines > 0
    assert report.data.duplicate_lines <= added
    assert "duplicate store line(s) (same _id) counted once" in render_text(report)


def test_a_copy_in_the_next_days_file_counts_once(clean, store: Path) -> None:
    """A cycle straddling midnight: two writers may file one document under adjacent days."""
    day1, day2 = check_files(store)[0], check_files(store)[1]
    for line in day1.read_bytes().splitlines()[-20:]:
        insert_line(day2, 1, line)
    report, source = report_of(store)
    assert figures(report) == clean[1]
    assert source.duplicate_lines == 20


def test_run_summaries_count_by_highest_version_wherever_written(clean, store: Path) -> None:
    last = run_files(store)[-1]
    # every run's snapshots appended again, oldest last: none may win over a newer one
    snapshots = [line for p in run_files(store) for line in p.read_bytes().splitlines()]
    with last.open("ab") as fh:
        for line in reversed(snapshots):
            fh.write(line + b"\n")
    report, _ = report_of(store)
    assert figures(report) == clean[1]


# -- implausible dates -----------------------------------------------------------------------


def _dated(doc: dict, when: datetime, n: int) -> dict:
    stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {**doc, "_id": f"clock-{n}", "@timestamp": stamp}


def test_checks_from_a_wrong_clock_are_ignored_and_said(clean, store: Path) -> None:
    doc = _check(store)
    future = datetime(2031, 6, 1, tzinfo=UTC)
    past = datetime(1970, 1, 1, tzinfo=UTC)
    (store / "checks-2031-06-01.ndjson").write_bytes(dumps(_dated(doc, future, 1)) + b"\n")
    (store / "checks-1970-01-01.ndjson").write_bytes(dumps(_dated(doc, past, 2)) + b"\n")
    report, _ = report_of(store)
    assert figures(report) == clean[1]
    assert (report.data.ignored_checks, report.data.ignored_runs) == (2, 0)
    text = render_text(report)
    assert "ignored 2 check document(s) and 0 run summary(ies) outside the plausible window" \
        in text


def _tiny_store(path: Path, stamps: list[datetime]) -> Path:
    base = {"event.dataset": "edgewatch.check", "edgewatch.resolver.name": "r1",
            "event.outcome": "success",
            "destination.ip": "192.0.2.1", "edgewatch.dns.answer_count": 1}
    for n, when in enumerate(stamps):
        with path.joinpath(f"checks-{when:%Y-%m-%d}.ndjson").open("ab") as fh:
            fh.write(dumps(_dated(base, when, n)) + b"\n")
    return path


def test_naming_the_window_includes_what_the_clock_rule_left_out(tmp_path: Path) -> None:
    t0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
    store = _tiny_store(tmp_path, [t0, t0 + timedelta(hours=1), t0 + timedelta(days=3)])
    now = Options(now=t0 + timedelta(hours=2))  # the third check lies two days ahead of now
    default = build_report(StoreSource(store), Filters(), now)
    assert (default.overall.documents, default.data.ignored_checks) == (2, 1)
    assert default.data.plausible_to == "2026-03-04T00:00:00Z"
    named = build_report(StoreSource(store), Filters(end=t0 + timedelta(days=4)), now)
    assert (named.overall.documents, named.data.ignored_checks) == (3, 0)
    assert named.data.plausible_to is None


def test_fifteen_seconds_of_evidence_stay_fifteen_seconds(tmp_path: Path) -> None:
    """The reported case: one document dated 2031 turned 15 s into "… over 1642.2 days"."""
    base = {"event.dataset": "edgewatch.check", "edgewatch.resolver.name": "r1",
            "event.outcome": "success",
            "destination.ip": "192.0.2.1", "edgewatch.dns.answer_count": 1}
    t0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
    docs = [_dated(base, t0, 1), _dated(base, t0 + timedelta(seconds=15), 2),
            _dated(base, datetime(2031, 9, 1, tzinfo=UTC), 3)]
    tmp_path.joinpath("checks-2026-03-02.ndjson").write_bytes(
        b"".join(dumps(d) + b"\n" for d in docs[:2]))
    tmp_path.joinpath("checks-2031-09-01.ndjson").write_bytes(dumps(docs[2]) + b"\n")
    report = build_report(StoreSource(tmp_path))
    assert report.window.seconds == 15
    assert report.window.days == 1
    assert report.data.ignored_checks == 1
    assert "1642" not in report.verdict.headline and "over 0.0 days" in report.verdict.headline


def test_a_run_summary_reaching_into_the_future_is_ignored(clean, store: Path) -> None:
    path = run_files(store)[-1]
    doc = first_doc(path)
    insert_line(path, 1, dumps({**doc, "_id": "r-future", "edgewatch.run.id": "r-future",
                                "edgewatch.run.last_seen": "2031-01-01T00:00:00.000Z",
                                "edgewatch.run.duration.s": 10**8}))
    report, _ = report_of(store)
    assert figures(report) == clean[1]
    assert report.data.ignored_runs == 1


def test_the_ceiling_follows_the_scenario_clock_of_the_config() -> None:
    """The lab's accelerated clock may run ahead of the wall clock: its evidence is kept."""
    real = datetime(2026, 12, 1, 20, 0, tzinfo=UTC).timestamp()
    assert clock_now(None, real) == datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    ahead = Clock(start=datetime(2027, 5, 1, tzinfo=UTC), anchor=real - 100, speed=3600)
    now = clock_now(ahead, real)
    assert now == datetime(2027, 5, 1, tzinfo=UTC) + timedelta(seconds=360_000)
    assert ceiling(now) == datetime(2027, 5, 7, tzinfo=UTC)
    f = plausible(Filters(), now)
    assert (f.not_before, f.not_after) == (FLOOR, ceiling(now))
    # an explicit window is the user's: no plausibility bound on that side
    g = plausible(Filters(start=datetime(2010, 1, 1, tzinfo=UTC),
                          end=datetime(2040, 1, 1, tzinfo=UTC)), now)
    assert (g.not_before, g.not_after) == (None, None)


# -- progress without a terminal --------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_in_a_log_is_whole_lines_at_a_low_rate() -> None:
    log = io.StringIO()
    p = Progress(stream=log)
    assert p.min_interval_s >= 5.0
    for n in range(1000):
        p.update(f"reading line {n}")
    p.done()
    assert log.getvalue() == "reading line 0\n"  # one line, newline-terminated, no \r
    tty = _Tty()
    t = Progress(stream=tty, min_interval_s=0.0)
    t.update("a")
    t.update("b")
    t.done()
    assert tty.getvalue() == "\r\x1b[Ka\r\x1b[Kb\r\x1b[K"


def test_a_store_read_writes_progress_lines_in_a_log(store: Path) -> None:
    big = check_files(store)[0]
    big.write_bytes(b"\n" * 200_000 + big.read_bytes())  # blank lines count, cost nothing
    log = io.StringIO()
    build_report(StoreSource(store, Progress(stream=log, min_interval_s=0.0)), SELECTED)
    out = log.getvalue()
    assert "\r" not in out and out.endswith("\n")
    assert f"reading {big.name} line 200,000" in out.splitlines()


def test_line_check_passes_every_document_the_pipeline_writes() -> None:
    """The checks must not refuse what edgewatch itself emits (documents.py builders)."""
    from faults_readers_helpers import history

    from pipeline.report.store_lines import problem

    h = history()
    assert all(problem(d, "checks") is None for d in h.checks)
    assert all(problem(orjson.loads(orjson.dumps({"_id": d["edgewatch.run.id"], **d})), "runs")
               is None
               for _, d in h.run_snapshots)


# -- names that land in firewall syntax ------------------------------------------------------


@pytest.mark.parametrize("name", ["x { }; flush ruleset; set y", "", "4abc", "a b", "a-b",
                                  "a/b", "a.b", 'a"b', "a\nb", "x" * 31, "ip", "icmpv", "ipv"])
def test_unsafe_set_names_are_refused(store: Path, name: str) -> None:
    from pipeline.report.allowlist import render_allowlist

    al = build_allowlist(StoreSource(store), plausible(SELECTED), 0.99, "ip")
    for fmt in ("nft", "ipset"):
        with pytest.raises(ValueError, match="set name"):
            render_allowlist(al, fmt, name)


def test_safe_set_names_are_written_whole(store: Path) -> None:
    from pipeline.report.allowlist import render_allowlist

    al = build_allowlist(StoreSource(store), plausible(SELECTED), 0.99, "ip")
    name = "A" + "b_9" * 9 + "zz"  # 30 characters: the longest allowed
    assert f"set {name}4 {{" in render_allowlist(al, "nft", name)
    assert f"create {name.replace('_', '-')}4 hash:net" in render_allowlist(al, "ipset", name)


def test_selection_text_cannot_leave_its_comment_line(store: Path) -> None:
    """Names from the selection are user text too: a newline in one must not become a rule."""
    from pipeline.report.allowlist import render_allowlist

    evil = Filters(targets=("api.example.test", "x\nflush ruleset\n"),
                   observers=SELECTED.observers)
    al = build_allowlist(StoreSource(store), plausible(evil), 0.99, "ip")
    for fmt in ("nft", "ipset", "cidr"):
        out = render_allowlist(al, fmt)
        assert "flush ruleset" in out  # still said, escaped, in the header
        assert not any(line.startswith("flush") for line in out.splitlines())
        assert "x\\x0aflush ruleset\\x0a" in out


def test_documents_with_nested_objects_are_checked_the_same_way() -> None:
    from pipeline.report.store_lines import problem

    nested = {"_id": "n1", "@timestamp": "2026-03-02T00:00:00Z",
              "event": {"dataset": "edgewatch.check", "outcome": "success"},
              "edgewatch": {"resolver": {"name": "alpha"}}, "destination": {"ip": "192.0.2.1"}}
    assert problem(nested, "checks") is None
    nested["destination"]["ip"] = "192.0.2.300"
    assert problem(nested, "checks") == "destination.ip is not an IP address: '192.0.2.300'"
    assert problem({**nested, "event": {"dataset": "edgewatch.run"}}, "checks").startswith(
        "event.dataset is 'edgewatch.run'")
