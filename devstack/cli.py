"""``edgewatch-devstack start|stop|prepare``: one node, or a cluster with ``--nodes N``.

The wrapper runs ``python -m devstack.node``, whose ``main`` hands over to this module; the node
itself is ``devstack.node``, the cluster ``devstack.cluster``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from devstack.cluster import start_cluster, stop_cluster
from devstack.node import ES_VERSION, DevstackError, _get_root, prepare_home, start_node, stop_node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="edgewatch-devstack",
        description="Start or stop a real Elasticsearch "
        f"{ES_VERSION} on 127.0.0.1 (no Docker): one node, or a cluster with --nodes.",
        epilog="example: edgewatch-devstack start --nodes 3 --port 9200 --run-dir var/devstack",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("start", help="start a node, wait until it answers, print its URL")
    up.add_argument("--run-dir", type=Path, default=Path("var/devstack"),
                    help="folder for the node's data, logs and pid (emptied first)")
    up.add_argument("--port", type=int, default=9200, help="HTTP port on 127.0.0.1")
    up.add_argument("--heap", default=None, help="JVM heap, e.g. 512m or 1g "
                    "(default 1g, 512m per node of a cluster)")
    up.add_argument("--nodes", type=int, default=1,
                    help="form a cluster of this many nodes (HTTP ports --port, --port+1, ...; "
                    "e.g. --nodes 3 --heap 512m); see devstack/cluster.py")
    down = sub.add_parser("stop", help="stop the node (or every node of the cluster) started "
                          "with the same --run-dir")
    down.add_argument("--run-dir", type=Path, default=Path("var/devstack"))
    sub.add_parser("prepare", help="fetch and unpack the distribution only (for CI caches)")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            print(prepare_home())
            return 0
        if args.command == "stop":
            stopped = stop_node(args.run_dir) + stop_cluster(args.run_dir)
            print(f"stopped {stopped} node(s)" if stopped else "no node was running")
            return 0
        run_dir = args.run_dir.resolve()
        if (run_dir / "launcher.pid").exists():
            stop_node(run_dir)
        stop_cluster(run_dir)
        if run_dir.exists():
            shutil.rmtree(run_dir)
        if args.nodes != 1:
            cluster = start_cluster(run_dir, nodes=args.nodes, heap=args.heap or "512m",
                                    http_ports=[args.port + i for i in range(args.nodes)])
            print(f"{args.nodes}-node cluster {cluster.cluster_name} is green "
                  f"(formed in {cluster.formed_in_s:.1f}s; master {cluster.master()})")
            print(",".join(cluster.urls))
            return 0
        node = start_node(run_dir=run_dir, port=args.port, heap=args.heap or "1g")
        info = _get_root(node.url) or {}
        print(f"Elasticsearch {info.get('version', {}).get('number', '?')} is up at {node.url} "
              f"(started in {node.started_in_s:.1f}s, RSS {node.rss_bytes() / 2**20:.0f} MiB)")
        print(node.url)
        return 0
    except DevstackError as exc:
        print(f"edgewatch-devstack: {exc}", file=sys.stderr)
        return 1
