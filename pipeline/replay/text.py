"""The replay as text: per target, each model's table, the resolver matrix, ECS and blocks.

``target_sections`` is shared with ``edgewatch report`` (which shows the same sections per
target); ``render_replay_text`` is ``edgewatch replay``'s output.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from pipeline.replay.build import Replay, TargetReplay
from pipeline.report.blocks import BlockLevel
from pipeline.report.text import table


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _dur(v: float | None) -> str:
    if v is None:
        return "–"
    if v >= 86400:
        return f"{v / 86400:.1f}d"
    if v >= 3600:
        return f"{v / 3600:.1f}h"
    return f"{v / 60:.0f}m"


def _models(t: TargetReplay) -> list[str]:
    out = []
    for m in t.models:
        cap = m.max_addresses or "no cap"
        keep = _dur(m.keep_previous_s) if m.keep_previous_s else "0"
        if m.kind == "static":
            out.append(f"model {m.name} (static list): {m.refresh}")
        elif m.kind == "living":
            out.append(f"model {m.name} (living list of `allowlist serve`): the probe's own "
                       f"verified checks, {m.refresh}; {m.refreshes} fetches, "
                       f"{m.failed_refreshes} before the first evidence (not counted)")
        else:
            out.append(f"model {m.name} ({m.kind}): resolver {m.resolver}, refresh {m.refresh}, "
                       f"max_addresses {cap}, keep_previous {keep}; {m.refreshes} refreshes, "
                       f"{m.failed_refreshes} failed polls")
        if not m.refreshes and m.kind == "fqdn":
            out.append(f"  (no successful answer of {m.resolver} in this selection: the "
                       "firewall never held an address, so every check counts as blocked)")
        rows = [[c.client, c.checks, f"{c.partly} ({_pct(c.partly_share)})",
                 f"{c.fully} ({_pct(c.fully_share)})", _dur(c.blocked_s),
                 _dur(c.longest_blocked_s), _dur(c.longest_fully_s), c.missed]
                for c in m.clients]
        out += table(["client", "checks", "partly blocked", "fully blocked", "blocked time",
                      "longest blocked", "longest fully", "missed addrs"], rows).splitlines()
        out.append("")
    return out


def _choice(t: TargetReplay) -> list[str]:
    c = t.choice
    names = c["resolvers"]
    if len(names) < 2:
        return []
    share = {(x["firewall"], x["client"]): x["share"] for x in c["cells"]}
    out = ["resolver choice (trivial model: refresh every cycle, no cap, no hold): share of "
           "the client's answers blocked partly or fully; rows = firewall resolver"]
    short = [n[-10:] for n in names]
    rows = [[fw] + ["·" if fw == cl else _pct(share.get((fw, cl))) for cl in names]
            for fw in names]
    out += table(["firewall \\ client", *short], rows).splitlines()
    out.append(f"best firewall resolver: {c['best']} (blocks {_pct(c['best_share'])} of the "
               "other resolvers' answers)")
    means = sorted(c["jaccard"], key=lambda j: (j["mean"] is None, -(j["mean"] or 0)))
    if means:
        out.append("daily Jaccard overlap of answer sets, mean over days (highest first): " +
                   ", ".join(f"{j['a']}~{j['b']} {j['mean']:.2f}" if j["mean"] is not None
                             else f"{j['a']}~{j['b']} –" for j in means[:8]))
    out.append("")
    return out


def _ecs(t: TargetReplay) -> list[str]:
    if not t.ecs:
        return []
    rows = [[e["resolver"], e["subnet"], e["answers"], _pct(e["scoped_share"]),
             e["compared_with"] or "–", _pct(e["differ_share"])] for e in t.ecs]
    head = ["resolver", "subnet", "answers", "scope > 0", "same provider w/o ECS", "sets differ"]
    return ["EDNS Client Subnet", *table(head, rows).splitlines(), ""]


def blocks_lines(blocks: Sequence[BlockLevel]) -> list[str]:
    if not blocks:
        return []
    rows = [[b.by, "all seen" if b.target is None else _pct(b.target), b.blocks,
             _pct(b.allowed), f"{b.opened:,}", b.used,
             "–" if b.ratio is None else f"{b.ratio:,.0f}×"] for b in blocks]
    head = ["by", "coverage", "blocks", "allowed", "addresses opened", "used", "ratio"]
    return ["blocks and their cost (addresses opened per address used)",
            *table(head, rows).splitlines(), ""]


def target_sections(t: TargetReplay) -> list[str]:
    return _models(t) + _choice(t) + _ecs(t) + blocks_lines(t.blocks)


def render_replay_text(replay: Replay) -> str:
    interval = _dur(replay.interval_s)
    out = [f"edgewatch replay — {replay.source}", f"sampling interval {interval}; "
           f"{replay.note}", ""]
    for t in replay.targets:
        out += [f"== {t.target} ({t.cycles} cycles) ==", ""]
        out += target_sections(t)
    return "\n".join(out).rstrip() + "\n"


def render_replay_json(replay: Replay) -> str:
    return orjson.dumps(replay.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
