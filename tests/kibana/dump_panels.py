"""Every Vega panel's spec and the rows its queries return, as JSON for kibana/render_check.py.

The first half of rendering the panels (``kibana/render_check.py`` draws the result). Every
visualization of type vega in kibana/edgewatch.ndjson is queried — none is listed here — each of
its Elasticsearch data sources translated as Kibana's Vega parser does (``kibana_vega``) and
posted to a real node. Two sources of documents:

* default: a fresh devstack node with the hand-made documents of ``panel_documents.py``
  (IPv4 and IPv6) loaded through edgewatch's templates, over their two-day window;
* ``--es-url URL --namespace NS``: a node into which ``edgewatch load`` has put a store (a lab
  run), over the store's time span (``--store DIR``) or ``--from``/``--to``.

It lives with the tests because the documents and the Kibana-style search are the tests';
kibana/ never imports tests/.

    .venv/bin/python tests/kibana/dump_panels.py -o /tmp/panels/panels.json
    .venv/bin/python tests/kibana/dump_panels.py --es-url http://127.0.0.1:9200 \\
        --namespace lab14 --store var/demo/data -o /tmp/lab14/panels.json
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # devstack/ runs from the checkout, as under pytest's pythonpath

import panel_documents as q  # noqa: E402  (this folder is sys.path[0] for a script)
from elasticsearch import Elasticsearch  # noqa: E402
from kibana_vega import (  # noqa: E402
    KibanaContext,
    leftover_placeholders,
    resolve_property,
    translate_url,
    vega_specs,
)

from devstack.node import start_node  # noqa: E402
from pipeline.es import installer, names  # noqa: E402
from pipeline.es.cluster import detect  # noqa: E402

NDJSON = ROOT / "kibana" / "edgewatch.ndjson"


def shipped_objects(path: Path = NDJSON) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def data_sources_with_paths(spec: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every Elasticsearch data source in a spec (Vega-Lite ``data``, layers, Vega's named data),
    with its JSON path, the key render_check.fill_data puts the rows back under."""
    if isinstance(spec, dict) and isinstance(spec.get("url"), dict) and "index" in spec["url"]:
        return [(path, spec)]
    if isinstance(spec, dict):
        children = [(f"{path}/{k}", v) for k, v in spec.items()]
    elif isinstance(spec, list):
        children = [(f"{path}/{i}", v) for i, v in enumerate(spec)]
    else:
        return []
    return [hit for where, child in children for hit in data_sources_with_paths(child, where)]


def dump_objects(es: Elasticsearch, objects: list[dict[str, Any]], idx: q.Indices,
                 ctx: KibanaContext) -> dict[str, Any]:
    """``{vis_id: {"spec": spec, "rows": {source path: rows}}}`` for every Vega panel."""
    out: dict[str, Any] = {}
    for vis_id, spec in vega_specs(objects).items():
        rows = {}
        for path, source in data_sources_with_paths(spec):
            search = translate_url(source["url"], ctx)
            assert leftover_placeholders(search.body) == [], (vis_id, search.body)
            target = idx.checks if fnmatch.fnmatch(idx.checks, search.index) else idx.runs
            reply = es.search(index=target, body=search.body, ignore_unavailable=True).body
            if reply["_shards"]["failed"]:
                raise RuntimeError(f"{vis_id}: shard failures {reply['_shards']}")
            prop = (source.get("format") or {}).get("property")
            rows[path] = resolve_property(reply, prop) if prop else reply
        out[vis_id] = {"spec": spec, "rows": rows}
    return out


def dump_test_documents(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The panels on a fresh devstack node holding the hand-made test documents."""
    node = start_node(run_dir=Path(tempfile.mkdtemp(prefix="edgewatch-render-")), heap="512m")
    try:
        es = Elasticsearch(node.url)
        ns = f"render{uuid.uuid4().hex[:6]}"
        installer.install(es, ns, detect(es, node.url))
        idx = q.Indices(names.check_data_stream(ns), names.runs_index(ns))
        q.load_documents(es, idx)
        out = dump_objects(es, objects, idx, q.WINDOW)
        es.close()
    finally:
        node.stop()
    return out


def store_span(store: Path) -> tuple[datetime, datetime]:
    """First and last check of an ndjson store, a minute either side (the time picker)."""
    from pipeline.sinks.ndjson import read_store
    times = [datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00"))
             for d in read_store(store, "checks")]
    return min(times) - timedelta(minutes=1), max(times) + timedelta(minutes=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--es-url", help="a node that already holds a loaded store")
    parser.add_argument("--namespace", help="the store's namespace on that node")
    parser.add_argument("--store", type=Path, help="the store, for its time span")
    parser.add_argument("--from", dest="start", help="time range start (ISO 8601)")
    parser.add_argument("--to", dest="end", help="time range end (ISO 8601)")
    args = parser.parse_args(argv)
    objects = shipped_objects()
    if args.es_url:
        if not args.namespace or not (args.store or (args.start and args.end)):
            parser.error("--es-url needs --namespace and --store (or --from and --to)")
        start, end = (store_span(args.store) if args.store else
                      (datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)))
        es = Elasticsearch(args.es_url, request_timeout=60)
        idx = q.Indices(names.check_data_stream(args.namespace), names.runs_index(args.namespace))
        out = dump_objects(es, objects, idx, KibanaContext(start, end))
        where = (f"{args.es_url} namespace {args.namespace}, "
                 f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}")
    else:
        out = dump_test_documents(objects)
        where = "a devstack node with the test documents"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    print(f"queried {len(out)} panels on {where} into {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
