"""The terminal rendering: plain aligned tables, widest-first reading order.

The verdict comes first because it is what the reader came for; the tables after it are the
evidence, in the order a firewall team would question it (how many addresses, how long they
stay, how often checks fail, what a list would have to contain, how fast it goes stale).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from pipeline.report.afterlife_render import afterlife_text
from pipeline.report.list_sections import text_sections
from pipeline.report.model import Figures, Report
from pipeline.report.observers_render import observers_text
from pipeline.report.verdict import duration, pct


def table(headers: Sequence[str], rows: Sequence[Sequence[object]],
          right: Sequence[bool] | None = None) -> str:
    """Columns padded to their widest cell; numbers (``right``) aligned right."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right = right or [i > 0 for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [c.rjust(w) if right[i] else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _bounds(point: float | None, bounds: list[float | None]) -> str:
    if point is None:
        return "not reached"
    lo, hi = bounds
    return f"{duration(point)} [{duration(lo)}–{duration(hi)}]"


def _fail(f: Figures, kind: str) -> str:
    rate = next(x for x in f.failures if x.kind == kind)
    return pct(rate.rate, 2)


def _plural(unit: str) -> str:
    return "queries" if unit == "query" else unit + "s"


def _section(title: str) -> str:
    return f"\n{title}\n{'=' * len(title)}"


def _header(report: Report, width: int) -> list[str]:
    """Source, window, selection, data notes and the verdict: what a reader needs first."""
    w = report.window
    out = [f"edgewatch report — {report.source}"]
    interval = (f"sampling every {duration(w.interval_s)} ({w.interval_source})"
                if w.interval_s else "sampling interval unknown")
    out.append(f"Window {w.start} → {w.end}: {w.days} day(s), {interval}")
    f = report.filters
    chosen = [f"{k} {', '.join(v)}" for k in ("targets", "observers", "resolvers")
              if (v := f.get(k))]
    if f.get("record_types"):  # --family: say which, in the reader's words
        chosen += ["IPv6 (AAAA) only" if f["record_types"] == ["AAAA"] else "IPv4 (A) only"]
    if chosen:
        out.append("Selected " + "; ".join(chosen))
    out += [f"Data: {note}" for note in report.data.notes()]

    out.append(_section("Verdict"))
    out.append(textwrap.fill(report.verdict.headline, width))
    for line in report.verdict.details:
        out.append(textwrap.fill(line, width, initial_indent="  - ", subsequent_indent="    "))
    return out


def _resolvers(report: Report) -> list[str]:
    """Per resolver: volumes and run lengths, then the failures by kind."""
    everyone = [*report.resolvers, report.overall]
    out = [_section("Resolvers"), table(
        ["resolver", "checks", "ok", "queries", "addrs", "/24s|/48s", "prefixes", "ASNs", "runs",
         "open", "median run [bounds]", "p90 run [bounds]", "DNS fail", "conn fail"],
        [[x.name, f"{x.documents:,}", pct(x.successful / x.documents if x.documents else None),
          f"{x.queries:,}", x.networks.addresses, x.networks.prefix24s, x.networks.prefixes,
          x.networks.asns, f"{x.run_length.runs:,}", f"{x.run_length.open:,}",
          _bounds(x.run_length.median_s, x.run_length.median_bounds_s),
          _bounds(x.run_length.p90_s, x.run_length.p90_bounds_s),
          _fail(x, "dns (any)"), _fail(x, "address check (any)")] for x in everyone])]

    out.append(_section("Failures by kind (95% Wilson interval)"))
    rows = []
    for x in everyone:
        for r in x.failures:
            if r.failures or r.kind.endswith("(any)"):
                ci = "-" if r.ci95 is None else f"{pct(r.ci95[0], 2)}–{pct(r.ci95[1], 2)}"
                rows.append([x.name, r.kind, f"{r.failures:,} / {r.trials:,} {_plural(r.unit)}",
                             pct(r.rate, 2), ci])
    out.append(table(["resolver", "kind", "failures", "rate", "95% CI"], rows,
                     [False, False, True, True, True]))
    return out


def _lists(report: Report) -> list[str]:
    """What an allowlist would hold: coverage by size, and its decay day by day."""
    w = report.window
    out = [_section("Coverage: smallest allowlist for a share of successful checks")]
    rows = []
    for c in report.coverage:
        rows.append([c.by, f"{c.successful_checks:,}", c.distinct]
                    + [f"{lv.entries} ({pct(lv.allowed, 2)})" for lv in c.levels])
    targets = [pct(lv.target, 1) for lv in report.coverage[0].levels] if report.coverage else []
    out.append(table(["by", "checks", "seen", *targets], rows))

    threshold = report.decay[0].threshold if report.decay else None
    out.append(_section(f"Decay: share of later days allowed by a list built from the first "
                        f"k days (stale below {pct(threshold)})"))
    if w.days < 2:
        out.append("fewer than two days of evidence")
    else:
        day_cols = [f"day {d}" for d in range(2, w.days + 1)]
        rows = []
        for d in report.decay:
            for row in d.rows:
                pad = ["" for _ in range(row.built_from_days - 1)]
                rows.append([d.by, row.built_from_days, row.size, *pad,
                             *[pct(s) for s in row.shares]])
        out.append(table(["by", "k", "size", *day_cols], rows))
    return out


def _addresses(report: Report, width: int) -> list[str]:
    """Stable addresses, handshake timings, edge hostnames and daily address counts."""
    w = report.window
    everyone = [*report.resolvers, report.overall]
    out = [_section("Most stable addresses (longest presence, fewest runs)"), table(
        ["address", "prefix", "ASN", "resolvers", "runs", "presence", "share", "ok checks"],
        [[s.ip, s.prefix, s.asn, s.resolvers, s.runs, duration(s.presence_s),
          pct(s.presence_share), f"{s.successful_checks:,}"] for s in report.overall.stable])]

    out.append(_section("Handshake timings (ms; nearest rank, 0.1 ms buckets)"))
    rows = []
    for x in everyone:
        for t in x.timings:
            rows.append([x.name, t.field, f"{t.count:,}", _ms(t.p50_ms), _ms(t.p90_ms),
                         _ms(t.p99_ms)])
    out.append(table(["resolver", "field", "n", "p50", "p90", "p99"], rows,
                     [False, False, True, True, True, True]))

    out.append(_section(f"Edge hostnames ({len(report.overall.networks.edge_hostnames)})"))
    out.append(textwrap.fill(", ".join(report.overall.networks.edge_hostnames) or "none",
                             width))
    out.append(_section("Unique addresses per day"))
    out.append(table(["resolver", *[f"day {d}" for d in range(1, w.days + 1)]],
                     [[x.name, *x.daily_addresses] for x in everyone]))
    return out


def _replay(report: Report) -> list[str]:
    """The target's replay sections (``pipeline.replay``), when the report carries them."""
    from pipeline.replay.text import blocks_lines, target_sections  # (imports this module)

    if report.replay is None:
        out = [_section("Blocks and their cost"), *blocks_lines(report.blocks)[1:]] \
            if report.blocks else []
        if report.replay_note:
            out += [_section("Replay"), textwrap.fill(report.replay_note, 100)]
        return out

    return [_section(f"Replay: {report.replay.target}"), *target_sections(report.replay)]


def render_text(report: Report, width: int = 100) -> str:
    """The whole report as plain text, section by section in reading order: each target's
    report first (when built per target), then the one over all targets as a summary."""
    out: list[str] = []
    for one in report.targets:
        out += [f"#### target {one.target_label}",
                render_text(one, width), ""]
    if report.targets:
        out.append("#### all targets (summary)")
    out += [*_header(report, width), *_resolvers(report), *_lists(report),
            *text_sections(report, table, _section), *_addresses(report, width),
            *afterlife_text(report), *observers_text(report), *_replay(report)]
    return "\n".join(out) + "\n"
