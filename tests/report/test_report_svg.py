"""The line chart drawn from a ``ChartSpec``: axes, guide line and series, without a store."""

from __future__ import annotations

import re
from dataclasses import replace

from pipeline.report.svg import ChartSpec, Series, line_chart

SPEC = ChartSpec(title="t", x_label="day", y_label="share", y_range=(0.0, 1.0),
                 x_range=(1.0, 3.0), x_integer=True, x_fmt=lambda v: f"day {v:g}")


def tick_labels(svg: str, size: int = 10) -> list[str]:
    return re.findall(rf"font-size='{size}' fill='#333' [^>]*>([^<]*)</text>", svg)


def test_an_integer_x_axis_has_whole_day_ticks_only() -> None:
    svg = line_chart([Series("a", [(1, 0.5), (3, 0.75)])], SPEC)
    days = [x for x in tick_labels(svg) if x.startswith("day ")]
    assert days == ["day 1", "day 2", "day 3"]  # never "day 1.5"


def test_the_guide_line_is_drawn_only_inside_the_y_range() -> None:
    inside = line_chart([Series("a", [(1, 0.5)])], replace(SPEC, hline=(0.99, "99%")))
    outside = line_chart([Series("a", [(1, 0.5)])], replace(SPEC, hline=(1.5, "150%")))
    assert "stroke-dasharray='2 3'" in inside and ">99%</text>" in inside
    assert "stroke-dasharray='2 3'" not in outside and "150%" not in outside


def test_a_log_axis_drops_points_at_or_below_zero() -> None:
    spec = ChartSpec(title="t", x_label="n", y_label="y", x_log=True, x_range=(1.0, 1000.0))
    svg = line_chart([Series("a", [(0, 0.1), (10, 0.5), (100, 0.9)], markers=True)], spec)
    assert svg.count("<circle") == 2  # the point at x=0 has no place on a log axis
    assert {"1", "10", "100", "1000"} <= set(tick_labels(svg))


def test_steps_draw_horizontal_then_vertical() -> None:
    svg = line_chart([Series("km", [(0, 1.0), (2, 0.5)], step=True)],
                     ChartSpec(title="t", x_label="h", y_label="s", x_range=(0.0, 2.0),
                               y_range=(0.0, 1.0)))
    (d,) = re.findall(r"<path d='([^']*)'", svg)
    assert re.fullmatch(r"M[\d.]+,[\d.]+H[\d.]+V[\d.]+", d)


def test_every_chart_is_well_formed_xml() -> None:
    """A browser shows nothing of an SVG with an attribute written twice (the guide's label did)."""
    from xml.etree import ElementTree

    svg = line_chart([Series("a", [(1, 0.5), (2, 0.7)], markers=True)],
                     replace(SPEC, hline=(0.6, "60%")))
    root = ElementTree.fromstring(svg)
    labels = [t for t in root.iter("{http://www.w3.org/2000/svg}text") if t.text == "60%"]
    assert [t.get("fill") for t in labels] == ["#D55E00"]
