"""The report's sections about deployed allowlists, as text and as HTML with a chart.

One section per list (``Report.allowlists``): its coverage of the window's successful checks,
day by day, and the addresses it missed with the first time each was missed, so a list that
went stale shows the day it did and what it should have held. Kept out of ``text`` and ``html``
so each of those stays one page of the common sections.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from pipeline.report.list_coverage import ListCoverage, MissedAddress
from pipeline.report.model import Report
from pipeline.report.svg import ChartSpec, Series, color, line_chart
from pipeline.report.verdict import pct

MAX_MISSED = 25  # addresses listed per list; the JSON has them all

Table = Callable[..., str]


def _summary(c: ListCoverage) -> str:
    return (f"{c.name} ({c.file}, {c.networks} networks): allowed {pct(c.coverage, 2)} of "
            f"{c.checks:,} successful checks; {len(c.missed)} address(es) missed")


def _day_rows(c: ListCoverage) -> list[list[object]]:
    return [[d.day + 1, (d.start or "")[:10], f"{d.checks:,}", f"{d.allowed:,}",
             pct(d.coverage, 2)] for d in c.days]


def _missed_rows(missed: Sequence[MissedAddress]) -> list[list[object]]:
    return [[m.ip, m.first, f"{m.checks:,}", m.prefix or "-",
             f"AS{m.asn}" if m.asn else "-", "; ".join(m.via)] for m in missed[:MAX_MISSED]]


def _more(c: ListCoverage) -> str | None:
    extra = len(c.missed) - MAX_MISSED
    return f"... and {extra} more (--format json lists every one)" if extra > 0 else None


def text_sections(report: Report, table: Table, section: Callable[[str], str]) -> list[str]:
    """The plain-text sections, with ``text``'s table and heading helpers."""
    out: list[str] = []
    for c in report.allowlists:
        out.append(section(f"Deployed allowlist {c.name}"))
        out.append(_summary(c))
        out.append(table(["day", "from", "checks", "allowed", "coverage"], _day_rows(c)))
        if c.missed:
            out.append("missed, first missed first:")
            out.append(table(["address", "first missed", "checks", "prefix", "ASN", "where"],
                             _missed_rows(c.missed),
                             [False, False, True, False, False, False]))
            if more := _more(c):
                out.append(more)
    return out


def coverage_by_day_chart(report: Report, threshold: float = 0.99) -> str:
    """Daily coverage of every deployed list: the day a list went stale is where it drops."""
    series = [Series(c.name, [(d.day + 1, d.coverage) for d in c.days if d.coverage is not None],
                     color(i), markers=True) for i, c in enumerate(report.allowlists)]
    return line_chart(series, ChartSpec(
        title="Deployed allowlists: share of each day's successful checks allowed",
        x_label="day", y_label="checks allowed", y_fmt=lambda v: f"{100 * v:g}%",
        y_range=(0.0, 1.0), x_range=(1.0, float(max(2, report.window.days))), x_integer=True,
        hline=(threshold, pct(threshold))))


def html_sections(report: Report, table: Table) -> list[str]:
    """The HTML sections, with ``html``'s table helper; the chart first."""
    if not report.allowlists:
        return []
    out = ["<h2>Deployed allowlists</h2>",
           f"<div class='grid'><div class='card'>{coverage_by_day_chart(report)}</div></div>"]
    for c in report.allowlists:
        out.append(f"<h2>Deployed allowlist {escape(c.name)}</h2>")
        out.append(f"<p class='meta'>{escape(_summary(c))}</p>")
        out.append(table(["day", "from", "checks", "allowed", "coverage"], _day_rows(c),
                         left=2))
        if c.missed:
            out.append(table(["address", "first missed", "checks", "prefix", "ASN", "where"],
                             _missed_rows(c.missed), left=2))
            if more := _more(c):
                out.append(f"<p class='meta'>{escape(more)}</p>")
    return out
