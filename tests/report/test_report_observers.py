"""The "by observer" fold on its own: what each observer saw, and what only it saw.

The figures against a real lab and cluster are tests/integration/test_observers_lab.py; here
the fold's rules, each with rows that would break it: an address counts once per observer
however many documents name it, a failed query is one query and no address, an address two
observers saw is nobody's own, and one observer alone gets no section.
"""

from __future__ import annotations

from pipeline.report.observers import fold
from pipeline.report.rows import ObserverRow, ObserverRunRow


def _ok(observer: str, ip: str, n: int = 2, answers: int = 2) -> ObserverRow:
    return ObserverRow(observer, ip, "success", None, answers, n)


def test_each_observer_its_addresses_runs_failures_and_own_addresses() -> None:
    rows = [
        _ok("fra", "127.60.0.30"), _ok("fra", "127.61.0.10"), _ok("fra", "127.61.0.10"),
        ObserverRow("fra", None, "failure", "dns.timeout", None, 3),
        _ok("nyc", "127.60.0.30"), _ok("nyc", "127.60.0.10", n=4),
        ObserverRow("nyc", "127.60.0.10", "failure", "tcp.refused", 2, 2),
        _ok("syd", "127.63.0.10"), _ok("syd", "127.63.0.2"),
    ]
    runs = [ObserverRunRow("fra", True, 2), ObserverRunRow("fra", False, 1),
            ObserverRunRow("nyc", True, 2), ObserverRunRow("syd", False, 3)]
    figures = {f.name: f for f in fold(rows, runs)}
    assert list(figures) == ["fra", "nyc", "syd"]
    fra, nyc, syd = figures["fra"], figures["nyc"], figures["syd"]
    assert (fra.addresses, fra.runs, fra.open_runs) == (2, 3, 2)
    # 6 documents of 2-address answers = 3 queries, plus 3 timed-out queries
    assert (fra.queries, fra.dns_failures, fra.address_checks, fra.address_failures) == (
        6, 3, 6, 0)
    assert (nyc.queries, nyc.address_checks, nyc.address_failures) == (4, 8, 2)
    assert fra.only_here == ["127.61.0.10"] and nyc.only_here == ["127.60.0.10"]
    assert syd.only_here == ["127.63.0.2", "127.63.0.10"]  # numeric order, not text order
    assert "127.60.0.30" not in fra.only_here + nyc.only_here


def test_one_observer_gets_no_section() -> None:
    assert fold([_ok("fra", "127.60.0.30")], [ObserverRunRow("fra", True, 1)]) == []
    assert fold([], []) == []


def test_one_observer_reads_no_runs() -> None:
    """The runs are read only when there is a section to show: with one observer (the usual
    probe) that read cost a full pass over the run summaries for nothing."""
    from pipeline.report.filters import Filters
    from pipeline.report.observers import observer_section

    class OneObserver:
        def observer_rows(self, filters: Filters) -> list[ObserverRow]:
            return [_ok("fra", "127.60.0.30"), _ok("fra", "127.61.0.10")]

        def observer_run_rows(self, filters: Filters) -> list[ObserverRunRow]:
            raise AssertionError("runs read for a section that is not shown")

    assert observer_section(OneObserver(), Filters()) == []  # type: ignore[arg-type]


def test_one_observer_by_name_reads_no_rows() -> None:
    """A source that names its observers cheaply (a terms aggregation) is not asked for the
    grouped rows when it names one: a whole pass over the checks saved; with two it is."""
    from pipeline.report.filters import Filters
    from pipeline.report.observers import observer_section

    class Named:
        def __init__(self, names: list[str]) -> None:
            self.names, self.rows_read = names, 0

        def observer_names(self, filters: Filters) -> list[str]:
            return self.names

        def observer_rows(self, filters: Filters) -> list[ObserverRow]:
            self.rows_read += 1
            return [_ok(n, f"127.60.0.{i}") for i, n in enumerate(self.names)]

        def observer_run_rows(self, filters: Filters) -> list[ObserverRunRow]:
            return []

    one, two = Named(["fra"]), Named(["fra", "nyc"])
    assert observer_section(one, Filters()) == [] and one.rows_read == 0  # type: ignore[arg-type]
    assert [f.name for f in observer_section(two, Filters())] == ["fra", "nyc"]  # type: ignore[arg-type]
    assert two.rows_read == 1
