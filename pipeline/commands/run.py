"""``edgewatch run``: the main job — cycles on a cadence until stopped or N cycles are done.

The options live here; the work in ``_run_cycles``, imported when the command runs (the CLI
builds every command's parser at start, and the probe's imports cost the other commands about
0.7 s).
"""

from __future__ import annotations

import argparse

from pipeline.commands._common import add_config_argument


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="probe every target through every resolver on a cadence",
        description="Run the probe: every cycle asks each resolver for each target, checks "
        "every answered address with TCP and TLS, tracks IP runs and writes documents to the "
        "configured sinks (Elasticsearch, or the local ndjson store when no cluster is "
        "configured). Stops cleanly on SIGTERM/SIGINT, finishing the cycle in flight; a "
        "second signal, or the cycle outliving the bound its timeouts give it, abandons it. "
        "With [metrics] listen = \"127.0.0.1:9464\" in the configuration it also serves "
        "Prometheus metrics at http://127.0.0.1:9464/metrics (docs/METRICS.md).",
        epilog="exit status: 0 all cycles delivered, 1 a sink could not take a cycle, 2 bad "
        "configuration or a state/store/spool directory held by another edgewatch process, "
        "3 the cycle in flight was abandoned on stop",
    )
    add_config_argument(p)
    p.add_argument("--once", action="store_true", help="run one cycle now and exit")
    p.add_argument("--cycles", type=int, metavar="N",
                   help="stop after N scheduled cycles (default: run until stopped)")
    p.add_argument("--no-align", action="store_true",
                   help="start the first cycle now instead of on the cadence grid")
    p.add_argument("--quiet", action="store_true", help="no progress line, no summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.commands._run_cycles import run as run_cycles

    return run_cycles(args)
