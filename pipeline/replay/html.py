"""The replay sections in the HTML report: one chart per section, then its table."""

from __future__ import annotations

from html import escape

from pipeline.replay.build import TargetReplay
from pipeline.replay.text import target_sections
from pipeline.report.svg import Bar, BarGroup, bar_chart, color


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def model_chart(t: TargetReplay) -> str:
    groups = []
    for m in t.models:
        bars = []
        for i, c in enumerate(m.clients):
            bars.append(Bar(c.client, c.blocked_share or 0.0, color=color(i),
                            note=f"({c.partly} partly, {c.fully} fully of {c.checks})"))
        groups.append(BarGroup(m.name, bars))
    legend = [(c.client, color(i)) for i, c in enumerate(t.models[0].clients)] if t.models else []
    return bar_chart(groups, title=f"{t.target}: answers blocked by each firewall model",
                     x_label="share of the client's answers blocked (partly or fully)",
                     x_fmt=_pct, legend=legend)


def choice_chart(t: TargetReplay) -> str:
    c = t.choice
    groups = []
    for fw in c["resolvers"]:
        cells = [x for x in c["cells"] if x["firewall"] == fw]
        checks = sum(x["checks"] for x in cells)
        share = sum(x["partly"] + x["fully"] for x in cells) / checks if checks else 0.0
        groups.append(BarGroup(fw[-16:], [Bar("all clients", share,
                                              color=color(2 if fw == c["best"] else 0))]))
    return bar_chart(groups, title=f"{t.target}: resolver choice (firewall re-resolving every "
                     "cycle)", x_label="share of the other resolvers' answers blocked",
                     x_fmt=_pct, legend=[("best", color(2)), ("other", color(0))])


def ecs_chart(t: TargetReplay) -> str:
    groups = [BarGroup(e["resolver"][-16:], [
        Bar("scope > 0", e["scoped_share"] or 0.0, color=color(0)),
        Bar(f"differs from {e['compared_with'] or '–'}", e["differ_share"] or 0.0,
            color=color(1))]) for e in t.ecs]
    return bar_chart(groups, title=f"{t.target}: EDNS Client Subnet evidence",
                     x_label="share of answers", x_fmt=_pct,
                     legend=[("scope > 0", color(0)), ("sets differ", color(1))])


def blocks_chart(t: TargetReplay) -> str:
    groups = []
    for b in t.blocks:
        label = f"{b.by} {'all' if b.target is None else _pct(b.target)}"
        groups.append(BarGroup(label, [Bar("opened", float(b.opened), color=color(5),
                                           note=f"for {b.used} used addresses")]))
    return bar_chart(groups, title=f"{t.target}: addresses opened by allowlisting blocks",
                     x_label="addresses opened", x_fmt=lambda v: f"{v:,.0f}")


def replay_html(t: TargetReplay) -> list[str]:
    charts = [model_chart(t) if t.models else "", choice_chart(t),
              ecs_chart(t) if t.ecs else "", blocks_chart(t) if t.blocks else ""]
    return ["<h3>Replay: firewall models, resolver choice, ECS, blocks</h3>",
            "<div class='grid'>",
            *[f"<div class='card'>{c}</div>" for c in charts if c], "</div>",
            f"<pre>{escape(chr(10).join(target_sections(t)))}</pre>"]
