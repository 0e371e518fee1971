"""Render every Vega panel of kibana/edgewatch.ndjson with real Vega, at Kibana's panel size.

The tests prove each panel's *query* on a real Elasticsearch node; this draws what Vega makes of
the reply, the way Kibana does: Vega 5 / Vega-Lite 5 (the versions Kibana 9 bundles) under
Node.js, autosize "fit" at the size Kibana gives the panel's view (from the dashboard's
gridData, ``vega_common.container_size``: ≈ 790 × 370 px for a 24 × 15 panel). Any Vega error,
or a NaN in the drawing, fails it. Output: one SVG and one PNG per panel (``rsvg-convert``),
an index.html, and with ``--board`` the whole dashboard as one picture (render_board.py).

The panels are not listed here: every visualization of type vega in the ndjson is drawn, so a
panel added in a new ``panels_*.py`` module is drawn as soon as build.py has written it. The
rows come from ``tests/kibana/dump_panels.py`` (the Kibana-style search belongs to the tests):
the hand-made test documents on a fresh node, or a lab run loaded into a node.

    npm install --prefix ~/.cache/edgewatch-vega vega@5 vega-lite@5
    .venv/bin/python tests/kibana/dump_panels.py -o /tmp/panels/panels.json
    .venv/bin/python kibana/render_check.py --node-modules ~/.cache/edgewatch-vega/node_modules \\
        --panels /tmp/panels/panels.json -o /tmp/panels --board

and look at ``/tmp/panels/index.html``. docs/KIBANA.md ("Images") has the lab-run recipe that
made docs/img/kibana/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from vega_common import container_size  # noqa: E402

NDJSON = HERE / "edgewatch.ndjson"

RENDER_JS = r"""
const fs = require('fs');
const vega = require('vega');
const vl = require('vega-lite');
const [input, outDir] = process.argv.slice(2);
const panels = JSON.parse(fs.readFileSync(input, 'utf8'));
// Without a canvas Vega cannot measure text and guesses 0.8 em a character, far wider than a
// browser's sans-serif (≈ 0.6 em; DejaVu Sans, which rsvg-convert draws with, ≈ 0.66 em):
// labels and legends Kibana draws whole would be cut here.
vega.textMetrics.width = (item, text) =>
  0.66 * (item.fontSize || 11) * String(text == null ? item.text : text).length;
(async () => {
  let failed = 0;
  for (const p of panels) {
    const msgs = [];
    const logger = {level() { return this; }, info() { return this; }, debug() { return this; },
      warn(...a) { msgs.push('WARN ' + a.join(' ')); return this; },
      error(...a) { msgs.push('ERROR ' + a.join(' ')); return this; }};
    try {
      const s = JSON.parse(JSON.stringify(p.spec));
      // What Kibana's Vega wrapper does: fit the view into the panel, padding included.
      s.autosize = {type: 'fit', contains: 'padding'};
      s.width = p.width; s.height = p.height;
      const isLite = String(s.$schema || '').includes('vega-lite');
      const vgSpec = isLite ? vl.compile(s, {logger}).spec : s;
      const view = new vega.View(vega.parse(vgSpec), {renderer: 'none', logger});
      await view.runAsync();
      const svg = await view.toSVG();
      fs.writeFileSync(`${outDir}/${p.id}.svg`, svg);
      if (svg.includes('NaN')) msgs.push('ERROR NaN in the drawing');
      const marks = (svg.match(/<(path|rect|line|circle|text)\b/g) || []).length;
      console.log(JSON.stringify({id: p.id, marks}));
    } catch (e) {
      msgs.push('ERROR ' + e.message);
    }
    const bad = msgs.some(m => m.startsWith('ERROR'));
    failed += bad ? 1 : 0;
    for (const m of msgs) console.error(`${p.id}: ${m}`);
    console.error(`${bad ? 'FAIL' : 'ok  '} ${p.id}`);
  }
  process.exit(failed ? 1 : 0);
})();
"""


def dashboard_panels(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every Vega panel on the board: id, title, grid (x, y, w, h) and its view size in px."""
    vis = {o["id"]: o for o in objects if o["type"] == "visualization"}
    (board,) = [o for o in objects if o["type"] == "dashboard"]
    refs = {r["name"]: r["id"] for r in board["references"]}
    out = []
    for panel in json.loads(board["attributes"]["panelsJSON"]):
        obj = vis.get(refs.get(panel["panelRefName"], ""))
        if obj is None or json.loads(obj["attributes"]["visState"])["type"] != "vega":
            continue
        g = panel["gridData"]
        width, height = container_size(g["w"], g["h"])
        out.append({"id": obj["id"], "title": obj["attributes"]["title"],
                    "grid": [g["x"], g["y"], g["w"], g["h"]], "width": width, "height": height})
    return out


def fill_data(spec: Any, rows: dict[str, list[Any]]) -> Any:
    """The spec with each Elasticsearch ``url`` data source replaced by the rows it returned.

    ``rows`` maps a source's position (its JSON path, as dump_panels.py writes it) to the rows
    at its ``format.property`` — what Kibana hands Vega. Works for Vega-Lite's ``data`` and
    Vega's named data alike.
    """
    def walk(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            if isinstance(node.get("url"), dict) and "index" in node["url"]:
                out = {k: v for k, v in node.items() if k not in ("url", "format")}
                fmt = {k: v for k, v in (node.get("format") or {}).items() if k != "property"}
                if fmt:
                    out["format"] = fmt
                out["values"] = rows[path]
                return out
            return {k: walk(v, f"{path}/{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{path}/{i}") for i, v in enumerate(node)]
        return node
    return walk(spec, "")


def render(node_modules: Path, dump: dict[str, Any], out_dir: Path,
           objects: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """Draw every Vega panel of the board; (exit status, the panels drawn with mark counts)."""
    panels = dashboard_panels(objects)
    missing = [p["id"] for p in panels if p["id"] not in dump]
    if missing:
        raise SystemExit(f"render_check: no rows for {', '.join(missing)} in the dump "
                         "(re-run tests/kibana/dump_panels.py after build.py)")
    work = [{**p, "spec": fill_data(dump[p["id"]]["spec"], dump[p["id"]]["rows"])}
            for p in panels]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "panels.in.json").write_text(json.dumps(work, ensure_ascii=False), "utf-8")
    script = out_dir / "render.js"
    script.write_text(RENDER_JS, encoding="utf-8")
    node = shutil.which("node") or "/usr/bin/node"
    proc = subprocess.run([node, str(script), str(out_dir / "panels.in.json"), str(out_dir)],
                          env={"NODE_PATH": str(node_modules.resolve()),
                               "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                          capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    marks = {d["id"]: d["marks"]
             for d in (json.loads(line) for line in proc.stdout.splitlines() if line.strip())}
    drawn = [{**p, "marks": marks[p["id"]]} for p in panels if p["id"] in marks]
    return proc.returncode, drawn


def to_png(svg: Path, png: Path) -> None:
    """SVG → PNG with librsvg (``rsvg-convert``), the converter installed here."""
    subprocess.run(["rsvg-convert", "--background-color", "white", "-o", str(png), str(svg)],
                   check=True)


def write_index(out_dir: Path, drawn: list[dict[str, Any]]) -> None:
    cells = "".join(f'<figure style="display:inline-block;margin:8px"><figcaption>{p["title"]}'
                    f' ({p["width"]}×{p["height"]} px)</figcaption>'
                    f'<img src="{p["id"]}.svg"></figure>' for p in drawn)
    (out_dir / "index.html").write_text(
        f'<html><body style="font-family:sans-serif">{cells}</body></html>', "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--node-modules", type=Path, required=True,
                        help="a node_modules folder with vega@5 and vega-lite@5")
    parser.add_argument("--panels", type=Path, required=True,
                        help="the JSON written by tests/kibana/dump_panels.py")
    parser.add_argument("--objects", type=Path, default=NDJSON, help="the saved objects")
    parser.add_argument("-o", "--output", type=Path, default=Path("panels-rendered"))
    parser.add_argument("--png", action="store_true", help="also write a PNG of each panel")
    parser.add_argument("--board", action="store_true",
                        help="also draw the whole dashboard as dashboard.png (implies --png)")
    args = parser.parse_args(argv)
    objects = [json.loads(line) for line in args.objects.read_text("utf-8").splitlines()
               if line.strip()]
    dump = json.loads(args.panels.read_text("utf-8"))
    status, drawn = render(args.node_modules, dump, args.output, objects)
    write_index(args.output, drawn)
    if status == 0 and (args.png or args.board):
        if shutil.which("rsvg-convert") is None:
            print("render_check: rsvg-convert (librsvg2-bin) is needed for PNGs", file=sys.stderr)
            return 2
        for p in drawn:
            to_png(args.output / f"{p['id']}.svg", args.output / f"{p['id']}.png")
    if status == 0 and args.board:
        from render_board import draw_board
        draw_board(objects, args.output, args.output / "dashboard.png")
    print(f"{len(drawn)} panels drawn into {args.output}" + ("" if status == 0 else ", FAILED"))
    return status


if __name__ == "__main__":
    sys.exit(main())
