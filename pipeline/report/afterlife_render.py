"""The afterlife section as text and as HTML (a table and two charts per report).

Kept apart from ``text`` and ``html`` so the section reads as one piece: what the stale entries
of each target would reach, the verdict first, the addresses after it.
"""

from __future__ import annotations

from html import escape

from pipeline.report.model import Afterlife, Report
from pipeline.report.svg import Bar, BarGroup, bar_chart
from pipeline.report.verdict import duration

VERDICT_COLORS = {"harmless": "#009E73", "dead": "#E69F00", "risk": "#D55E00"}
ENTRY_ROWS = 20  # addresses listed per target (the risky and dead ones first)
HEADERS = ["address", "verdict", "checks", "serving", "refusing", "other cert",
           "served valid until", "first refusing", "first other cert", "checked until"]


def _ages(seconds: float | None) -> str:
    return "-" if seconds is None else duration(seconds)


def _rows(a: Afterlife) -> list[list[object]]:
    return [[e.ip, e.verdict, e.checks, e.serving, e.refusing, e.other_certificate,
             _ages(e.served_until_s), _ages(e.first_refusing_s),
             _ages(e.first_other_certificate_s), _ages(e.last_age_s)]
            for e in a.addresses[:ENTRY_ROWS]]


def _summary(a: Afterlife) -> str:
    return (f"{a.entries} retired address(es), {a.checks:,} checks: {a.harmless} harmless "
            f"(kept serving the name with a valid certificate), {a.dead} dead (stopped "
            f"serving), {a.risk} risk (presented another certificate)")


def afterlife_text(report: Report) -> list[str]:
    """The section for ``render_text``; nothing when no afterlife was recorded."""
    if not report.afterlife:
        return []
    # here, not at the top: pipeline.report.text imports this module
    from pipeline.report.text import _section, table

    out = [_section("Retired addresses: what a stale allowlist entry reaches (afterlife)")]
    for a in report.afterlife:
        out += [f"\n{a.target}: {a.verdict}", _summary(a),
                table(HEADERS, _rows(a), [False, False, *[True] * (len(HEADERS) - 2)])]
    return out


def afterlife_chart(report: Report) -> str:
    """Per target and address: how long it served validly, when it first refused, when it
    first presented another certificate (hours after retirement)."""
    groups = []
    for a in report.afterlife:
        for e in a.addresses[:ENTRY_ROWS]:
            bars = [Bar(label, value / 3600, color=VERDICT_COLORS[verdict])
                    for label, value, verdict in (
                        ("served valid until", e.served_until_s, "harmless"),
                        ("first refusing", e.first_refusing_s, "dead"),
                        ("first other certificate", e.first_other_certificate_s, "risk"))
                    if value is not None]
            label = e.ip if len(report.afterlife) == 1 else f"{a.target[:12]} {e.ip}"
            groups.append(BarGroup(label, bars))
    return bar_chart(groups, title="Retired addresses: hours after retirement",
                     x_label="hours since the address's run ended", x_fmt=lambda v: f"{v:g}",
                     legend=[("served valid until", VERDICT_COLORS["harmless"]),
                             ("first refusing", VERDICT_COLORS["dead"]),
                             ("first other certificate", VERDICT_COLORS["risk"])])


def verdict_chart(report: Report) -> str:
    """Per target: retired addresses by verdict."""
    groups = [BarGroup(a.target[:18], [Bar(v, float(getattr(a, v)), color=c,
                                           note=f"of {a.entries}")
                                       for v, c in VERDICT_COLORS.items()])
              for a in report.afterlife]
    return bar_chart(groups, title="Retired addresses by verdict", x_label="addresses",
                     legend=list(VERDICT_COLORS.items()))


def afterlife_html(report: Report) -> list[str]:
    """The section for ``render_html``; nothing when no afterlife was recorded."""
    if not report.afterlife:
        return []
    from pipeline.report.html import _table  # here: pipeline.report.html imports this module

    parts = ["<h2>Retired addresses (afterlife)</h2><div class='grid'>",
             f"<div class='card'>{verdict_chart(report)}</div>",
             f"<div class='card'>{afterlife_chart(report)}</div></div>"]
    for a in report.afterlife:
        parts += [f"<h3>{escape(a.target)}</h3><p class='meta'>{escape(a.verdict)}<br>"
                  f"{escape(_summary(a))}</p>", _table(HEADERS, _rows(a), left=2)]
    return parts
