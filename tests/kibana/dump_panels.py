"""Every Vega panel's spec and the rows its query returns on the test documents, as JSON.

The first half of the manual rendering check (``kibana/render_check.py`` draws the result): it
starts a devstack node, loads the documents of ``panel_documents.py`` (IPv4 and IPv6) through
edgewatch's templates and runs each panel's query as Kibana would. It lives with the tests
because those documents and the Kibana-style search are the tests'; kibana/ never imports tests/.

    .venv/bin/python tests/kibana/dump_panels.py -o /tmp/panels/panels.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # devstack/ runs from the checkout, as under pytest's pythonpath

import panel_documents as q  # noqa: E402  (this folder is sys.path[0] for a script)
from elasticsearch import Elasticsearch  # noqa: E402
from kibana_vega import vega_specs  # noqa: E402

from devstack.node import start_node  # noqa: E402
from pipeline.es import installer, names  # noqa: E402
from pipeline.es.cluster import detect  # noqa: E402


def dump_panels(path: Path) -> int:
    """Run every panel's query on a fresh devstack node with the test documents; write rows."""
    objects = [json.loads(line) for line in
               (ROOT / "kibana" / "edgewatch.ndjson").read_text(encoding="utf-8").splitlines()]
    node = start_node(run_dir=Path(tempfile.mkdtemp(prefix="edgewatch-render-")))
    try:
        es = Elasticsearch(node.url)
        ns = f"render{uuid.uuid4().hex[:6]}"
        installer.install(es, ns, detect(es, node.url))
        idx = q.Indices(names.check_data_stream(ns), names.runs_index(ns))
        q.load_documents(es, idx)
        out = {}
        for vis_id, spec in vega_specs(objects).items():
            rows, _ = q.run_panel(es, objects, idx, vis_id)
            out[vis_id] = {"spec": spec, "rows": rows}
        es.close()
    finally:
        node.stop()
    path.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return len(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, required=True, help="the JSON file to write")
    args = parser.parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    print(f"queried {dump_panels(args.output)} panels on a devstack node into {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
