"""Render every Vega-Lite panel with real Vega on the test documents — a manual check.

The test suite proves each panel's *query* on a real Elasticsearch node, but not that Vega draws
something sensible from the reply (it has no JavaScript engine in CI). This script closes that
gap by hand, in two steps: ``tests/kibana/dump_panels.py`` starts a devstack node, loads the
test documents through edgewatch's templates and writes every panel's spec with the rows its
query returned (the documents and the Kibana-style search belong to the tests, so they stay
there and this script is handed their output); this script then compiles each spec with
Vega-Lite and renders it with Vega under Node.js (``renderer: none`` → SVG), failing on any
Vega error or a NaN in the drawing.

    mkdir -p /tmp/vega && (cd /tmp/vega && npm install vega@5 vega-lite@5)
    .venv/bin/python tests/kibana/dump_panels.py -o /tmp/panels/panels.json
    .venv/bin/python kibana/render_check.py --node-modules /tmp/vega/node_modules \
        --panels /tmp/panels/panels.json -o /tmp/panels

and look at ``/tmp/panels/index.html``. Kibana 9 bundles Vega 5 and Vega-Lite 5.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

RENDER_JS = r"""
const fs = require('fs');
const vega = require('vega');
const vl = require('vega-lite');
const [input, outDir] = process.argv.slice(2);
const panels = JSON.parse(fs.readFileSync(input, 'utf8'));
(async () => {
  let failed = 0;
  let html = '<html><body style="font-family:sans-serif">';
  for (const [id, {spec, rows}] of Object.entries(panels)) {
    const s = JSON.parse(JSON.stringify(spec));
    s.data = {values: rows};  // what Kibana hands Vega once format.property is applied
    s.width = 500; s.height = 280;
    const msgs = [];
    const logger = {level() { return this; }, info() { return this; }, debug() { return this; },
      warn(...a) { msgs.push('WARN ' + a.join(' ')); return this; },
      error(...a) { msgs.push('ERROR ' + a.join(' ')); return this; }};
    try {
      const view = new vega.View(vega.parse(vl.compile(s, {logger}).spec),
                                 {renderer: 'none', logger});
      await view.runAsync();
      const svg = await view.toSVG();
      fs.writeFileSync(`${outDir}/${id}.svg`, svg);
      html += `<div style="display:inline-block;margin:8px"><div>${id}</div>${svg}</div>`;
      if (svg.includes('NaN')) msgs.push('ERROR NaN in the drawing');
    } catch (e) {
      msgs.push('ERROR ' + e.message);
    }
    const bad = msgs.some(m => m.startsWith('ERROR'));
    failed += bad ? 1 : 0;
    const notes = msgs.map(m => '\n     ' + m).join('');
    console.log(`${bad ? 'FAIL' : 'ok  '} ${id}${notes}`);
  }
  fs.writeFileSync(`${outDir}/index.html`, html + '</body></html>');
  process.exit(failed ? 1 : 0);
})();
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--node-modules", type=Path, required=True,
                        help="a node_modules folder with vega@5 and vega-lite@5")
    parser.add_argument("--panels", type=Path, required=True,
                        help="the JSON written by tests/kibana/dump_panels.py")
    parser.add_argument("-o", "--output", type=Path, default=Path("panels-rendered"))
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    data = args.panels.resolve()
    script = args.output / "render.js"
    script.write_text(RENDER_JS, encoding="utf-8")
    env = {"NODE_PATH": str(args.node_modules.resolve())}
    proc = subprocess.run(["node", str(script), str(data), str(args.output)], env=env)
    print(f"SVGs and index.html in {args.output}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
