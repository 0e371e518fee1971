"""``edgewatch-devstack``: start or stop a devstack node, a secured node or a small cluster.

Kept apart from node.py (how one node is started and stopped) so that the command line can grow
a mode without that module growing past its one job.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from devstack.node import ES_VERSION, DevstackError, _get_root, prepare_home, start_node, stop_node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="edgewatch-devstack",
        description="Start or stop a real single-node Elasticsearch "
        f"{ES_VERSION} on 127.0.0.1 (no Docker).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("start", help="start a node, wait until it answers, print its URL")
    up.add_argument("--run-dir", type=Path, default=Path("var/devstack"),
                    help="folder for the node's data, logs and pid (emptied first)")
    up.add_argument("--port", type=int, default=9200, help="HTTP port on 127.0.0.1")
    up.add_argument("--heap", default=None, help="JVM heap, e.g. 512m (default 1g; 512m a node "
                    "with --nodes)")
    up.add_argument("--nodes", type=int, default=1, help="form a cluster of N nodes on HTTP "
                    "ports --port, --port+1, ... (devstack/cluster.py), e.g. --nodes 3")
    up.add_argument("--security", action="store_true",
                    help="security on, HTTPS with a CA of its own; elastic's password from "
                    "$ELASTIC_PASSWORD or generated into RUN_DIR/elastic.password")
    down = sub.add_parser("stop", help="stop the node(s) started with the same --run-dir")
    down.add_argument("--run-dir", type=Path, default=Path("var/devstack"))
    sub.add_parser("prepare", help="fetch and unpack the distribution only (for CI caches)")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            print(prepare_home())
            return 0
        from devstack.cluster import start_cluster_cli, stop_cluster

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
        if args.security:
            from devstack.secure import start_command
            return start_command(run_dir, args.port, args.heap or "1g")
        if args.nodes != 1:
            return start_cluster_cli(run_dir, args.nodes, args.port, args.heap or "512m")
        node = start_node(run_dir=run_dir, port=args.port, heap=args.heap or "1g")
        info = _get_root(node.url) or {}
        print(f"Elasticsearch {info.get('version', {}).get('number', '?')} is up at {node.url} "
              f"(started in {node.started_in_s:.1f}s, RSS {node.rss_bytes() / 2**20:.0f} MiB)")
        print(node.url)
        return 0
    except DevstackError as exc:
        print(f"edgewatch-devstack: {exc}", file=sys.stderr)
        return 1



if __name__ == "__main__":
    sys.exit(main())
