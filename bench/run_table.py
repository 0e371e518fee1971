"""The runner's figures as the issue's table (work, edgewatch, peer or limit, ratio, target,
met) and its place in docs/BENCHMARKS.md, between two markers that only the runner writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BEGIN = "<!-- bench/run.py: begin (written by the runner; edits here are overwritten) -->"
END = "<!-- bench/run.py: end -->"


@dataclass
class Row:
    """One line of the table. ``ratio`` is edgewatch ÷ peer: of costs (CPU per operation, lower
    is better) or of rates (docs/s, queries per CPU second: higher is better); ``better`` says
    which, so that ``met`` is decided against ``goal``. ``shown`` replaces the ratio's text
    where the figure compared with the goal is not a ratio (seconds, a growth)."""

    work: str
    edgewatch: str
    peer: str
    ratio: float | None = None
    goal: float | None = None
    better: str = "lower"  # "lower": ratio ≤ goal meets it; "higher": ratio ≥ goal
    target: str = ""
    note: str = ""
    shown: str = ""

    @property
    def met(self) -> str:
        if self.goal is None:
            return "—"
        if self.ratio is None:
            return "not measured"
        ok = self.ratio <= self.goal if self.better == "lower" else self.ratio >= self.goal
        return "met" if ok else "not met"


def us(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f} µs"


def fmt_ratio(r: Row) -> str:
    if r.shown:
        return r.shown
    if r.ratio is None:
        return "—"
    return f"{r.ratio:.2f}×" if r.better == "lower" else f"{r.ratio:.2f}"


def table(rows: list[Row]) -> str:
    lines = ["| work | edgewatch | peer or limit | ratio | target | met |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.work} | {r.edgewatch} | {r.peer} | {fmt_ratio(r)} | "
                     f"{r.target or '—'} | {r.met} |")
    notes = [f"* {r.work}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def section(rows: list[Row], header: list[str], details: list[str]) -> str:
    """The text between the markers: what ran, the table, then the details of each workload."""
    return "\n".join([BEGIN, "", *header, "", table(rows), "", *details, "", END])


def write_between_markers(path: Path, text: str) -> None:
    """Replace what is between the markers (or append the block once, at the end)."""
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        new = head + text + tail
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)
