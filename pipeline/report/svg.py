"""Small inline-SVG charts, generated in Python so the HTML report needs nothing external.

Two shapes cover every chart of the report: lines (optionally as steps, e.g. survival curves)
and horizontal bars with interval whiskers. Output is plain SVG markup with a ``<title>`` per
mark, so hovering shows the exact figure in any browser and the file stays self-contained.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000", "#999999", "#882255")
FONT = "font-family='system-ui,-apple-system,Segoe UI,Roboto,sans-serif'"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


@dataclass
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    color: str = PALETTE[0]
    step: bool = False  # draw as a right-continuous step function (survival curves)
    dashed: bool = False
    width: float = 2.0
    markers: bool = False


@dataclass
class Bar:
    label: str
    value: float
    low: float | None = None
    high: float | None = None
    color: str = PALETTE[0]
    note: str = ""


@dataclass
class BarGroup:
    label: str
    bars: list[Bar] = field(default_factory=list)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (1, 2, 2.5, 5 × 10^k steps)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, v = [], start
    while v <= hi + step * 1e-9:
        if v >= lo - step * 1e-9:
            ticks.append(round(v, 10))
        v += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    lo, hi = max(lo, 1.0), max(hi, 1.0)
    out = []
    for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** k
            if lo <= v <= hi:
                out.append(float(v))
    return out or [lo]


def _text(x: float, y: float, s: str, anchor: str = "middle", size: int = 11,
          extra: str = "") -> str:
    """One label, grey unless ``extra`` brings its own fill (an attribute twice is not XML)."""
    fill = "" if "fill=" in extra else "fill='#333' "
    return (f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' font-size='{size}' "
            f"{fill}{FONT} {extra}>{escape(s)}</text>")



def _opening(width: int, height: int, left: float, title: str) -> list[str]:
    """The <svg> element, a white background and the chart's title: every chart starts so."""
    return [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
            f"width='{width}' height='{height}' role='img' aria-label='{escape(title)}'>",
            f"<rect width='{width}' height='{height}' fill='#fff'/>",
            _text(left, 18, title, "start", 13, "font-weight='600'")]


def _general(v: float) -> str:
    return f"{v:g}"


@dataclass(frozen=True)
class ChartSpec:
    """What a line chart shows besides its series: titles, formats, axis ranges and guides.

    One value instead of a dozen keyword arguments, so a chart's look is named once and the
    drawing code can pass it whole to its helpers."""

    title: str
    x_label: str
    y_label: str
    x_fmt: Callable[[float], str] = _general
    y_fmt: Callable[[float], str] = _general
    y_range: tuple[float, float] | None = None
    x_range: tuple[float, float] | None = None
    x_log: bool = False
    x_integer: bool = False  # whole-number ticks only (days: never day 1.5)
    hline: tuple[float, str] | None = None  # a dashed guide at y, with its label
    width: int = 660
    height: int = 300


@dataclass(frozen=True)
class _Frame:
    """The plot area of a line chart and its two scales, from data to pixels."""

    spec: ChartSpec
    left: float
    top: float
    pw: float
    ph: float
    x0: float
    x1: float
    y0: float
    y1: float
    xt: list[float]
    yt: list[float]

    def sx(self, v: float) -> float:
        if self.spec.x_log:
            return self.left + (math.log10(max(v, self.x0)) - math.log10(self.x0)) / (
                math.log10(self.x1) - math.log10(self.x0)) * self.pw
        return self.left + (v - self.x0) / (self.x1 - self.x0) * self.pw

    def sy(self, v: float) -> float:
        return self.top + self.ph - (v - self.y0) / (self.y1 - self.y0) * self.ph


def _x_axis(spec: ChartSpec, x0: float, x1: float) -> tuple[float, float, list[float]]:
    """The x range, corrected so it is never empty, and its ticks (log, integer or round)."""
    if spec.x_log:
        x0, x1 = max(x0, 1.0), max(x1, 1.0)
        if x1 <= x0:
            x1 = x0 * 10
        return x0, x1, log_ticks(x0, x1)
    if x1 <= x0:
        x1 = x0 + 1.0
    xt = nice_ticks(x0, x1, 6)
    if spec.x_integer:  # days: 1, 2, 3 … (or every 2nd, 3rd …), never day 1.5
        step = max(1, math.ceil((x1 - x0) / 8))
        xt = [float(t) for t in range(math.ceil(x0), math.floor(x1) + 1, step)]
    return x0, x1, xt


def _frame(series: Sequence[Series], spec: ChartSpec) -> _Frame:
    legend_w = 150
    left, right, top, bottom = 58, legend_w + 16, 30, 44
    xs = [p[0] for s in series for p in s.points] or [0.0, 1.0]
    ys = [p[1] for s in series for p in s.points] or [0.0, 1.0]
    x0, x1, xt = _x_axis(spec, *(spec.x_range or (min(xs), max(xs))))
    y0, y1 = spec.y_range or (min(0.0, min(ys)), max(ys))
    if y1 <= y0:
        y1 = y0 + 1.0
    return _Frame(spec, left, top, spec.width - left - right, spec.height - top - bottom,
                  x0, x1, y0, y1, xt, nice_ticks(y0, y1, 5))


def _grid(f: _Frame) -> list[str]:
    """Grid lines, tick labels, the plot border, axis labels and the optional guide line."""
    spec, left, top, pw, ph = f.spec, f.left, f.top, f.pw, f.ph
    out = []
    for t in f.yt:
        y = f.sy(t)
        out.append(f"<line x1='{left}' x2='{left + pw}' y1='{y:.1f}' y2='{y:.1f}' "
                   f"stroke='#e5e5e5'/>")
        out.append(_text(left - 6, y + 4, spec.y_fmt(t), "end", 10))
    for t in f.xt:
        if f.x0 <= t <= f.x1:
            x = f.sx(t)
            out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{top + ph}' "
                       f"stroke='#f0f0f0'/>")
            out.append(_text(x, top + ph + 15, spec.x_fmt(t), "middle", 10))
    out.append(f"<rect x='{left}' y='{top}' width='{pw}' height='{ph}' fill='none' "
               f"stroke='#999'/>")
    out.append(_text(left + pw / 2, spec.height - 8, spec.x_label, "middle", 11))
    out.append(_text(14, top + ph / 2, spec.y_label, "middle", 11,
                     f"transform='rotate(-90 14 {top + ph / 2:.1f})'"))
    hline = spec.hline
    if hline is not None and f.y0 <= hline[0] <= f.y1:
        y = f.sy(hline[0])
        out.append(f"<line x1='{left}' x2='{left + pw}' y1='{y:.1f}' y2='{y:.1f}' "
                   f"stroke='#D55E00' stroke-dasharray='2 3'/>")
        out.append(_text(left + pw - 4, y - 4, hline[1], "end", 10, "fill='#D55E00'"))
    return out


def _line(f: _Frame, s: Series) -> list[str]:
    """One series: its path (straight or as steps) and, when few enough, a marker per point."""
    spec = f.spec
    pts = [(f.sx(x), f.sy(y)) for x, y in s.points if not (spec.x_log and x <= 0)]
    if not pts:
        return []
    if s.step:
        d = f"M{pts[0][0]:.1f},{pts[0][1]:.1f}" + "".join(
            f"H{qx:.1f}V{qy:.1f}" for qx, qy in pts[1:])
    else:
        d = "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    dash = " stroke-dasharray='6 4'" if s.dashed else ""
    out = [f"<path d='{d}' fill='none' stroke='{s.color}' stroke-width='{s.width}'"
           f"{dash}><title>{escape(s.name)}</title></path>"]
    if (s.markers and len(pts) <= 40) or len(pts) == 1:
        for (x, y), (vx, vy) in zip(pts, s.points, strict=False):
            out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{s.color}'>"
                       f"<title>{escape(s.name)}: {escape(spec.x_fmt(vx))} → "
                       f"{escape(spec.y_fmt(vy))}</title></circle>")
    return out


def _legend(f: _Frame, series: Sequence[Series]) -> list[str]:
    out = []
    lx = f.left + f.pw + 14
    for i, s in enumerate(series[:14]):
        y = f.top + 8 + i * 17
        dash = " stroke-dasharray='6 4'" if s.dashed else ""
        out.append(f"<line x1='{lx}' x2='{lx + 18}' y1='{y}' y2='{y}' stroke='{s.color}' "
                   f"stroke-width='3'{dash}/>")
        out.append(_text(lx + 24, y + 4, s.name[:22], "start", 10))
    return out


def line_chart(series: Sequence[Series], spec: ChartSpec) -> str:
    """Lines over shared axes, legend on the right."""
    f = _frame(series, spec)
    out = _opening(spec.width, spec.height, f.left, spec.title)
    out += _grid(f)
    for s in series:
        out += _line(f, s)
    out += _legend(f, series)
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(groups: Sequence[BarGroup], *, title: str, x_label: str,
              x_fmt: Callable[[float], str] = lambda v: f"{v:g}", width: int = 660,
              legend: Sequence[tuple[str, str]] = ()) -> str:
    """Horizontal bars grouped by label, each with an optional [low, high] whisker."""
    bar_h, gap = 13, 12
    left, right, top = 120, 170 if legend else 20, 34
    rows = sum(max(1, len(g.bars)) for g in groups)
    ph = rows * bar_h + len(groups) * gap
    height = top + ph + 40
    pw = width - left - right
    hi = max([b.high or b.value for g in groups for b in g.bars] + [1e-9])
    xt = nice_ticks(0.0, hi, 5)
    x1 = max(xt[-1], hi)

    def sx(v: float) -> float:
        return left + v / x1 * pw

    out = _opening(width, height, left, title)
    for t in xt:
        x = sx(t)
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{top + ph}' "
                   f"stroke='#eee'/>")
        out.append(_text(x, top + ph + 14, x_fmt(t), "middle", 10))
    y = top
    for g in groups:
        n = max(1, len(g.bars))
        out.append(_text(left - 8, y + n * bar_h / 2 + 4, g.label, "end", 11))
        for b in g.bars:
            w = max(0.5, sx(b.value) - left)
            out.append(f"<rect x='{left}' y='{y + 1}' width='{w:.1f}' height='{bar_h - 2}' "
                       f"fill='{b.color}'><title>{escape(g.label)} · {escape(b.label)}: "
                       f"{escape(x_fmt(b.value))} {escape(b.note)}</title></rect>")
            if b.low is not None and b.high is not None:
                cy = y + bar_h / 2
                out.append(f"<line x1='{sx(b.low):.1f}' x2='{sx(b.high):.1f}' y1='{cy:.1f}' "
                           f"y2='{cy:.1f}' stroke='#222' stroke-width='1.2'/>")
                for v in (b.low, b.high):
                    out.append(f"<line x1='{sx(v):.1f}' x2='{sx(v):.1f}' y1='{cy - 4:.1f}' "
                               f"y2='{cy + 4:.1f}' stroke='#222' stroke-width='1.2'/>")
            y += bar_h
        if not g.bars:
            y += bar_h
        y += gap
    out.append(f"<line x1='{left}' x2='{left}' y1='{top}' y2='{top + ph}' stroke='#999'/>")
    out.append(_text(left + pw / 2, height - 8, x_label, "middle", 11))
    lx = left + pw + 16
    for i, (name, c) in enumerate(legend[:14]):
        ly = top + 8 + i * 17
        out.append(f"<rect x='{lx}' y='{ly - 6}' width='14' height='10' fill='{c}'/>")
        out.append(_text(lx + 20, ly + 3, name[:24], "start", 10))
    out.append("</svg>")
    return "\n".join(out)
