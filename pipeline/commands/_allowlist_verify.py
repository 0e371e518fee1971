"""``edgewatch allowlist verify``: does the deployed list still cover what resolvers hand out?

Exit status for cron and monitoring: 0 the list covered at least --min-coverage of the window's
successful checks; 1 it did not; 2 a usage or data error (a bad list file, an unreadable
source, no successful check in the window: a probe that stopped delivering is not "covered").
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import timedelta
from pathlib import Path

from pipeline.allowlists import ListError, load_version
from pipeline.report.options import (
    add_source_arguments,
    duration_arg,
    filters_from,
    open_source,
    print_warnings,
    share_arg,
)
from pipeline.report.plausible import plausible

EXAMPLE = """\
example, from cron every hour (mail or alert on a non-zero exit):
  edgewatch allowlist verify --list /etc/nftables.d/api-allow.nft --since 24h \\
      --min-coverage 0.99 --config /etc/edgewatch/edgewatch.toml

exit status: 0 covered (at least --min-coverage of the window's successful checks went to
addresses in the list); 1 below the minimum (the text names the addresses missed, since when,
per target and resolver); 2 a usage or data error (unreadable or invalid list, unreadable
evidence, no successful check in the window). The list may be CIDR lines, plain addresses, an
nftables script, an ipset restore file or edgewatch allowlist JSON; '#' starts a comment.
"""


def add_verify_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="check a deployed allowlist against the recent window (exit 0/1/2)",
        description="Coverage of the recent window by an allowlist file: the share of "
        "successful checks whose address the list contains, per target and resolver, with "
        "every address it misses and the first time it was missed.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", dest="list_file", type=Path, required=True, metavar="FILE",
                   help="the allowlist file as deployed")
    p.add_argument("--since", type=duration_arg, default=86400.0, metavar="DURATION",
                   help="window length back from now, e.g. 24h, 7d (default 24h; --from wins)")
    p.add_argument("--min-coverage", type=share_arg, default=0.99, metavar="SHARE",
                   help="the coverage below which the exit status is 1 (default 0.99)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_source_arguments(p)
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"edgewatch allowlist verify: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from elasticsearch import ApiError, TransportError  # here: the CLI starts without it

    from pipeline.report.store_lines import StoreLineError
    from pipeline.report.verify import render_json, render_text, verify

    try:
        lst = load_version("list", args.list_file)
    except ListError as exc:
        return _fail(str(exc))
    lst = dataclasses.replace(lst, name=args.list_file.name)
    filters = filters_from(args, "allowlist verify")
    source, now = open_source(args)
    if filters.start is None:
        filters = dataclasses.replace(filters, start=now - timedelta(seconds=args.since))
    try:
        result = verify(source, plausible(filters, now), lst, args.min_coverage)
    except (FileNotFoundError, StoreLineError) as exc:
        return _fail(str(exc))
    except (OSError, ApiError, TransportError) as exc:
        return _fail(f"reading {source.description} failed: {exc}")
    print_warnings(source, "allowlist verify")
    if result.result.checks == 0:
        return _fail(f"no successful checks in {source.description} from {result.start}: "
                     "nothing to verify against (is the probe delivering?)")
    sys.stdout.write(render_json(result) if args.format == "json" else render_text(result))
    return 0 if result.ok else 1
