"""``edgewatch allowlist``: the smallest allowlist that would have allowed a share of checks.

Output is ready for the firewall (CIDR lines, an nftables set, an ipset restore file) or for
automation (JSON), always headed by the evidence window and the coverage it achieved.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.report.allowlist import FORMATS, build_allowlist, render_allowlist
from pipeline.report.options import add_source_arguments, filters_from, share_arg, source_from


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "allowlist", help="emit the smallest allowlist covering a share of successful checks",
        description="Rank addresses (or /24s, or announced prefixes) by the successful checks "
        "they served and emit the fewest that together allowed --coverage of them, with a "
        "header stating the evidence window and the coverage achieved.",
    )
    p.add_argument("--coverage", type=share_arg, default=0.99, metavar="SHARE",
                   help="share of successful checks to allow, e.g. 0.99 or 99.9%% (default 0.99)")
    p.add_argument("--by", choices=("ip", "prefix24", "prefix"), default="ip",
                   help="entry granularity: single addresses, /24s (IPv6 /48s) or announced "
                   "prefixes (default ip)")
    p.add_argument("--format", choices=FORMATS, default="cidr", help="output format")
    p.add_argument("--set-name", default="edgewatch_allow",
                   help="nftables/ipset set name (4/6 is appended)")
    p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    add_source_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from elasticsearch import ApiError, TransportError  # here: the CLI starts without it

    source = source_from(args)
    try:
        al = build_allowlist(source, filters_from(args), args.coverage, args.by)
    except FileNotFoundError as exc:
        print(f"edgewatch allowlist: {exc}", file=sys.stderr)
        return 1
    except (ApiError, TransportError) as exc:
        print(f"edgewatch allowlist: reading {source.description} failed: {exc}",
              file=sys.stderr)
        return 1
    if not al.entries:
        print("edgewatch allowlist: no successful checks in the selection", file=sys.stderr)
        return 1
    text = render_allowlist(al, args.format, args.set_name)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
