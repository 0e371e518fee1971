"""The whole dashboard as one picture, from the panels render_check.py drew.

Each Vega panel's SVG is placed where the dashboard's gridData puts it (Kibana's grid: 48
columns of ≈ 33 px, rows of 28 px with the margins), under its panel title, on Kibana's light
background; the control row, the Markdown help panel and the saved search (a Discover table,
which Vega does not draw) are drawn as labelled boxes. One SVG, converted to PNG by
``rsvg-convert``. It is a drawing of the saved objects, not a screenshot of Kibana: the point is
to show a person what the dashboard holds and how it is laid out before installing it.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from html import escape
from pathlib import Path
from typing import Any

from controls import CONTROLS

COL_PX = 34  # a little wider than Kibana's 33 so that a view of container_size() fits its box
ROW_PX = 28
TITLE_PX = 30
CONTROLS_PX = 56
HEADER_PX = 48
BACKGROUND = "#f7f8fc"
BORDER = "#d3dae6"
TEXT = "#343741"
MUTED = "#69707d"


def _panel_box(x: int, y: int, w: int, h: int, title: str) -> str:
    return (f'<rect x="{x + 4}" y="{y + 4}" width="{w - 8}" height="{h - 8}" rx="6" '
            f'fill="white" stroke="{BORDER}"/>'
            f'<text x="{x + 16}" y="{y + 24}" font-size="13" font-weight="bold" '
            f'fill="{TEXT}">{escape(title)}</text>')


def _inline_svg(path: Path, x: int, y: int) -> str:
    """A panel's SVG nested at (x, y): its root element kept, the XML prolog dropped."""
    svg = path.read_text(encoding="utf-8")
    svg = re.sub(r"^<\?xml[^>]*\?>", "", svg).strip()
    return svg.replace("<svg ", f'<svg x="{x}" y="{y}" ', 1)


def _vis_type(obj: dict[str, Any]) -> str:
    if obj["type"] != "visualization":
        return ""
    return str(json.loads(obj["attributes"]["visState"]).get("type", ""))


def _markdown(obj: dict[str, Any], x: int, y: int, width: int) -> str:
    """A Markdown panel's text, markup stripped, wrapped to the panel (≈ 6.5 px a character)."""
    text = json.loads(obj["attributes"]["visState"])["params"]["markdown"]
    text = re.sub(r"[*`]", "", text)
    lines = textwrap.wrap(text, width=max(20, int(width / 6.5)))
    return "".join(f'<text x="{x}" y="{y + 17 * i}" font-size="12" fill="{TEXT}">'
                   f"{escape(line)}</text>" for i, line in enumerate(lines))


def _controls_row(width: int) -> str:
    parts = [f'<text x="16" y="{HEADER_PX + 20}" font-size="11" fill="{MUTED}">controls</text>']
    step = (width - 32) // len(CONTROLS)
    for i, c in enumerate(CONTROLS):
        x = 16 + i * step
        parts.append(f'<rect x="{x}" y="{HEADER_PX + 26}" width="{step - 12}" height="24" '
                     f'rx="4" fill="white" stroke="{BORDER}"/>'
                     f'<text x="{x + 10}" y="{HEADER_PX + 42}" font-size="12" fill="{TEXT}">'
                     f'{escape(c.title)} · <tspan fill="{MUTED}">{escape(c.field)}</tspan>'
                     f' ▾</text>')
    return "".join(parts)


def draw_board(objects: list[dict[str, Any]], panels_dir: Path, png: Path) -> Path:
    """Write ``dashboard.svg`` beside ``png`` and convert it; return the PNG's path."""
    by_id = {o["id"]: o for o in objects}
    (board,) = [o for o in objects if o["type"] == "dashboard"]
    refs = {r["name"]: r["id"] for r in board["references"]}
    grid = json.loads(board["attributes"]["panelsJSON"])
    top = HEADER_PX + CONTROLS_PX
    width = 48 * COL_PX
    height = top + max(g["gridData"]["y"] + g["gridData"]["h"] for g in grid) * ROW_PX
    body = [f'<rect width="{width}" height="{height}" fill="{BACKGROUND}"/>',
            f'<text x="16" y="30" font-size="18" font-weight="bold" fill="{TEXT}">'
            f'{escape(board["attributes"]["title"])}</text>', _controls_row(width)]
    for panel in grid:
        g = panel["gridData"]
        x, y = g["x"] * COL_PX, top + g["y"] * ROW_PX
        w, h = g["w"] * COL_PX, g["h"] * ROW_PX
        obj = by_id[refs[panel["panelRefName"]]]
        body.append(_panel_box(x, y, w, h, obj["attributes"]["title"]))
        svg = panels_dir / f"{obj['id']}.svg"
        if svg.exists():
            body.append(_inline_svg(svg, x + 12, y + TITLE_PX))
        elif _vis_type(obj) == "markdown":
            body.append(_markdown(obj, x + 16, y + 50, w - 32))
        else:
            what = ("a Discover table of the documents" if obj["type"] == "search"
                    else f"a {_vis_type(obj) or obj['type']} panel, not drawn here")
            body.append(f'<text x="{x + 16}" y="{y + 52}" font-size="12" fill="{MUTED}">'
                        f"{escape(obj['type'])} {escape(obj['id'])}: {escape(what)}</text>")
    svg_path = png.with_suffix(".svg")
    svg_path.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
                        f'height="{height}" font-family="sans-serif">{"".join(body)}</svg>',
                        encoding="utf-8")
    subprocess.run(["rsvg-convert", "-o", str(png), str(svg_path)], check=True)
    return png
