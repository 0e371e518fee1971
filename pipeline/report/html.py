"""The HTML rendering: one self-contained file (inline CSS and SVG, no scripts, no fonts).

A firewall team should be able to mail the file around and open it anywhere, offline, years
later; so nothing is fetched, and every chart is SVG drawn by ``svg`` from the report's figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from html import escape

from pipeline.report.afterlife_render import afterlife_html
from pipeline.report.list_sections import html_sections
from pipeline.report.model import ALL, Figures, Report
from pipeline.report.observers_render import observers_html
from pipeline.report.svg import (
    Bar,
    BarGroup,
    ChartSpec,
    Series,
    bar_chart,
    color,
    line_chart,
)
from pipeline.report.verdict import duration, nouns_for, pct

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;
max-width:1400px;color:#222;background:#fafafa;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:13px}
.verdict{background:#fff;border-left:6px solid #888;padding:12px 16px;margin:16px 0;
box-shadow:0 1px 2px #0001}
.verdict.yes{border-color:#009E73}.verdict.no{border-color:#D55E00}
.verdict p{font-size:16px;margin:0 0 8px} .verdict li{font-size:13px;color:#444}
.grid{display:flex;flex-wrap:wrap;gap:14px} .card{background:#fff;padding:8px;
box-shadow:0 1px 2px #0001} .card svg{display:block;max-width:100%;height:auto}
table{border-collapse:collapse;background:#fff;font-size:12.5px;margin:6px 0}
th,td{padding:3px 9px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{background:#f1f1f1} td.l,th.l{text-align:left}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:10px 0}
.kpi{background:#fff;padding:8px 14px;box-shadow:0 1px 2px #0001;min-width:120px}
.kpi b{display:block;font-size:20px} .kpi span{font-size:12px;color:#555}
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]],
           left: int = 1) -> str:
    head = "".join(f"<th class='{'l' if i < left else ''}'>{escape(str(h))}</th>"
                   for i, h in enumerate(headers))
    body = []
    for r in rows:
        cells = "".join(f"<td class='{'l' if i < left else ''}'>"
                        f"{escape('' if c is None else str(c))}</td>" for i, c in enumerate(r))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _hours(v: float) -> str:
    return f"{v:g}"


def _pct_axis(v: float) -> str:
    return f"{100 * v:g}%"


def survival_chart(report: Report) -> str:
    series = []
    for i, f in enumerate(report.resolvers):
        pts = [(t / 3600.0, s) for t, s in f.run_length.curve]
        if len(pts) > 1:
            series.append(Series(f.name, pts, color(i), step=True))
    pts = [(t / 3600.0, s) for t, s in report.overall.run_length.curve]
    series.append(Series("all resolvers", pts, "#000", step=True, dashed=True))
    return line_chart(series, ChartSpec(
        title="Run length: share of address runs still going (Kaplan–Meier)",
        x_label="hours since the run started", y_label="runs still present",
        x_fmt=_hours, y_fmt=_pct_axis, y_range=(0.0, 1.0)))


def daily_chart(report: Report) -> str:
    series = [Series(f.name, [(d + 1, n) for d, n in enumerate(f.daily_addresses)], color(i),
                     markers=True) for i, f in enumerate(report.resolvers)]
    series.append(Series("all resolvers",
                         [(d + 1, n) for d, n in enumerate(report.overall.daily_addresses)],
                         "#000", dashed=True, markers=True))
    return line_chart(series, ChartSpec(
        title="Unique addresses handed out per day", x_label="day", y_label="addresses",
        y_fmt=lambda v: f"{v:g}", x_range=(1.0, float(max(2, report.window.days))),
        x_integer=True))


def _nouns(report: Report) -> dict[str, tuple[str, str]]:
    """The granularities' names, the /24 one after the blocks seen (IPv6: /48s)."""
    blocks = next((c.ranked for c in report.coverage if c.by == "prefix24"), [])
    return nouns_for(key for key, _ in blocks)


def coverage_chart(report: Report) -> str:
    names = _nouns(report)
    series = [Series(names[c.by][1], [(k, s) for k, s in c.curve], color(i), markers=True)
              for i, c in enumerate(report.coverage) if c.curve]
    most = max((c.distinct for c in report.coverage), default=1)
    return line_chart(series, ChartSpec(
        title="Coverage: successful checks allowed by the top N entries",
        x_label="allowlist entries (most used first)", y_label="checks allowed",
        y_fmt=_pct_axis, y_range=(0.0, 1.0), x_log=most > 30,
        x_range=(1.0, float(max(2, most))), hline=(0.99, "99%")))


def decay_charts(report: Report) -> list[str]:
    days = report.window.days
    if days < 2:
        return []
    thr = report.decay[0].threshold if report.decay else 0.99
    first = []
    names = _nouns(report)
    for i, d in enumerate(report.decay):
        if d.rows:
            row = d.rows[0]
            # dashed from the second on: coinciding lines (every /24 its own prefix) stay visible
            first.append(Series(f"{names[d.by][1]} ({row.size})",
                                [(1 + j + 1, s) for j, s in enumerate(row.shares)
                                 if s is not None], color(i), markers=True, dashed=i > 0))
    decay = ChartSpec(title="Decay: a list built from day 1, day by day",
                      x_label="day", y_label="later checks allowed", y_fmt=_pct_axis,
                      y_range=(0.0, 1.0), x_range=(1.0, float(days)), x_integer=True,
                      hline=(thr, pct(thr)))
    charts = [line_chart(first, decay)]
    ip = report.decay_by("ip")
    by_k = [Series(f"first {row.built_from_days} day(s) ({row.size})",
                   [(row.built_from_days + j + 1, s) for j, s in enumerate(row.shares)
                    if s is not None], color(i), markers=True)
            for i, row in enumerate(ip.rows[:10])]
    charts.append(line_chart(by_k, replace(
        decay, title="Decay by address: lists built from the first k days")))
    return charts


def failure_chart(report: Report) -> str:
    kinds = sorted({r.kind for f in report.resolvers for r in f.failures
                    if r.failures and not r.kind.endswith("(any)")})
    colors = {k: color(i) for i, k in enumerate(kinds)}
    groups = []
    for f in [*report.resolvers, report.overall]:
        bars = [Bar(r.kind, r.rate or 0.0, *(r.ci95 or (None, None)), color=colors[r.kind],
                    note=f"({r.failures}/{r.trials} {r.unit}s)")
                for r in f.failures if r.kind in colors and r.trials]
        groups.append(BarGroup("all resolvers" if f.name == ALL else f.name, bars))
    return bar_chart(groups, title="Failures by resolver and kind (95% Wilson intervals)",
                     x_label="share of queries (dns.*) or of address checks (others)",
                     x_fmt=lambda v: f"{100 * v:.3g}%",
                     legend=[(k, colors[k]) for k in kinds])


def _between(bounds: list[float | None]) -> str:
    lo, hi = bounds
    if lo is None and hi is None:
        return "—"
    return f"{duration(lo)} – {duration(hi)}"


def _run(f: Figures) -> list[object]:
    rl = f.run_length
    return [rl.runs, rl.open, duration(rl.median_s), _between(rl.median_bounds_s),
            duration(rl.p90_s), _between(rl.p90_bounds_s)]


def _kpis(report: Report) -> str:
    o = report.overall
    ip99 = next((lv for lv in report.coverage_by("ip").levels if lv.target == 0.99), None)
    kpis = [
        (f"{o.successful:,}", "successful checks"),
        (f"{o.networks.addresses:,}", "addresses"),
        (f"{o.networks.prefix24s:,}", _nouns(report)["prefix24"][1]),
        (f"{o.networks.prefixes:,}", "announced prefixes"),
        (f"{o.networks.asns:,}", "ASNs"),
        (f"{o.run_length.runs:,}", "address runs"),
        (duration(o.run_length.median_s), "median run"),
        (str(ip99.entries) if ip99 else "-", "addresses for 99%"),
    ]
    return ("<div class='kpis'>" + "".join(f"<div class='kpi'><b>{escape(a)}</b>"
                                           f"<span>{escape(b)}</span></div>" for a, b in kpis)
            + "</div>")


def _head(report: Report) -> list[str]:
    """The document head, the title block with the window, the verdict and the key figures."""
    w, v = report.window, report.verdict
    cls = "yes" if v.feasible else ("no" if v.feasible is False else "")
    return [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>edgewatch report {escape(w.start or '')} – {escape(w.end or '')}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>edgewatch: is allowlisting feasible?</h1>",
        f"<div class='meta'>{escape(report.source)} · {escape(str(w.start))} → "
        f"{escape(str(w.end))} · {w.days} day(s) · sampling "
        f"{escape(duration(w.interval_s) if w.interval_s else 'unknown')} "
        f"({escape(w.interval_source)}) · generated {escape(report.generated_at)}</div>",
        "".join(f"<div class='meta'>Data: {escape(n)}</div>" for n in report.data.notes()),
        f"<div class='verdict {cls}'><p>{escape(v.headline)}</p><ul>"
        + "".join(f"<li>{escape(d)}</li>" for d in v.details) + "</ul></div>",
        _kpis(report),
    ]


def _charts(report: Report) -> list[str]:
    charts = [survival_chart(report), daily_chart(report), coverage_chart(report),
              *decay_charts(report), failure_chart(report)]
    return ["<h2>Charts</h2><div class='grid'>",
            *[f"<div class='card'>{c}</div>" for c in charts], "</div>"]


def _resolver_tables(report: Report) -> list[str]:
    """Per resolver: the volumes and run lengths, then the failures by kind."""
    everyone = [*report.resolvers, report.overall]
    return [
        "<h2>Resolvers</h2>",
        _table(
            ["resolver", "checks", "successful", "queries", "addresses", "/24s", "prefixes",
             "ASNs", "runs", "open", "median run", "bounds", "p90 run", "bounds"],
            [[f.name, f"{f.documents:,}", f"{f.successful:,}", f"{f.queries:,}",
              f.networks.addresses, f.networks.prefix24s, f.networks.prefixes, f.networks.asns,
              *_run(f)] for f in everyone]),
        "<h2>Failures by kind</h2>",
        _table(
            ["resolver", "kind", "failures", "trials", "unit", "rate", "95% CI"],
            [[f.name, r.kind, f"{r.failures:,}", f"{r.trials:,}", r.unit, pct(r.rate, 2),
              "-" if not r.ci95 else f"{pct(r.ci95[0], 2)} – {pct(r.ci95[1], 2)}"]
             for f in everyone for r in f.failures if r.failures or r.kind.endswith("(any)")],
            left=2),
    ]


def _list_tables(report: Report) -> list[str]:
    """What an allowlist would hold: coverage by size, and its decay day by day."""
    w = report.window
    parts = ["<h2>Coverage</h2>", _table(
        ["by", "successful checks", "distinct",
         *[pct(lv.target) for lv in report.coverage[0].levels]],
        [[c.by, f"{c.successful_checks:,}", c.distinct,
          *[f"{lv.entries} ({pct(lv.allowed, 2)})" for lv in c.levels]]
         for c in report.coverage])]
    if w.days >= 2:
        parts.append("<h2>Decay</h2>")
        rows = []
        for d in report.decay:
            for row in d.rows:
                rows.append([d.by, row.built_from_days, row.size,
                             *["" for _ in range(row.built_from_days - 1)],
                             *[pct(s) for s in row.shares]])
        parts.append(_table(["by", "built from days", "size",
                             *[f"day {n}" for n in range(2, w.days + 1)]], rows))
    return parts


def _address_tables(report: Report) -> list[str]:
    """The most stable addresses, the handshake timings and the edge hostnames."""
    o = report.overall
    everyone = [*report.resolvers, o]
    return [
        "<h2>Most stable addresses</h2>",
        _table(
            ["address", "/24", "prefix", "ASN", "resolvers", "runs", "presence", "share",
             "successful checks"],
            [[s.ip, s.prefix24, s.prefix, s.asn, s.resolvers, s.runs, duration(s.presence_s),
              pct(s.presence_share), f"{s.successful_checks:,}"] for s in o.stable], left=3),
        "<h2>Handshake timings (ms)</h2>",
        _table(
            ["resolver", "field", "n", "p50", "p90", "p99"],
            [[f.name, t.field, f"{t.count:,}", t.p50_ms, t.p90_ms, t.p99_ms]
             for f in everyone for t in f.timings], left=2),
        f"<h2>Edge hostnames ({len(o.networks.edge_hostnames)})</h2>",
        _table(["resolver", "hostnames"],
               [[f.name, ", ".join(f.networks.edge_hostnames)] for f in report.resolvers],
               left=2),
    ]


def _per_target(report: Report) -> list[str]:
    """Each target's verdict, charts, tables and replay sections, before the summary."""
    from pipeline.replay.html import replay_html  # the replay imports the report's modules

    out = []
    for one in report.targets:
        name = one.target_label
        out += [f"<h2>Target {escape(name)}</h2>",
                f"<p><b>{escape(one.verdict.headline)}</b></p>", *_charts(one),
                *_list_tables(one), *(replay_html(one.replay) if one.replay else [])]
    if out:
        out.append("<h2>All targets (summary)</h2>")
    elif report.replay is not None:  # a single target: its replay sections, once
        out += replay_html(report.replay)
    if report.replay_note:
        out.append(f"<p><i>{escape(report.replay_note)}</i></p>")
    return out


def render_html(report: Report) -> str:
    """The whole report as one HTML page, section by section in reading order (per target
    first when the report was built per target)."""
    parts = [*_head(report), *_per_target(report), *_charts(report),
             *_resolver_tables(report), *_list_tables(report), *html_sections(report, _table),
             *_address_tables(report), *afterlife_html(report),
             *observers_html(report), "</body></html>"]
    return "\n".join(parts)
