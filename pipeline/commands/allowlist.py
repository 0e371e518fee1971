"""``edgewatch allowlist``: the smallest allowlist that would have allowed a share of checks.

Output is ready for the firewall (CIDR lines, an nftables set, an ipset restore file) or for
automation (JSON), always headed by the evidence window and the coverage it achieved.

``edgewatch allowlist verify`` (``_allowlist_verify``) checks a deployed list instead.

Exit status: 0 list written; 1 no successful checks in the selection, the evidence could not be
read, or (``--strict``) a store line was unusable; 2 a bad argument (a set name that is not a
safe nft/ipset identifier, --from not before --to, an unwritable -o).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.commands._allowlist_verify import add_verify_parser
from pipeline.report.allowlist import FORMATS, build_allowlist, check_set_name, render_allowlist
from pipeline.report.options import (
    add_source_arguments,
    check_output,
    filters_from,
    open_source,
    print_warnings,
    share_arg,
    usage_error,
    write_output,
)
from pipeline.report.plausible import plausible


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "allowlist", help="emit the smallest allowlist covering a share of successful checks",
        description="Rank addresses (or /24s, or announced prefixes) by the successful checks "
        "they served and emit the fewest that together allowed --coverage of them, with a "
        "header stating the evidence window and the coverage achieved.",
        epilog="To check a list already deployed: edgewatch allowlist verify --list FILE "
        "(see edgewatch allowlist verify --help). "
        "Exit status: 0 list written; 1 no successful checks in the selection, the "
        "evidence could not be read, or --strict met an unusable store line; 2 bad arguments. "
        "Checks dated outside the plausible window (before 2020, or after tomorrow unless "
        "--from/--to say otherwise) are left out, as in edgewatch report.",
    )
    p.add_argument("--coverage", type=share_arg, default=0.99, metavar="SHARE",
                   help="share of successful checks to allow, e.g. 0.99 or 99.9%% (default 0.99)")
    p.add_argument("--by", choices=("ip", "prefix24", "prefix"), default="ip",
                   help="entry granularity: single addresses, /24s (IPv6 /48s) or announced "
                   "prefixes (default ip)")
    p.add_argument("--format", choices=FORMATS, default="cidr", help="output format")
    p.add_argument("--set-name", default="edgewatch_allow",
                   help="nftables/ipset set name (4/6 is appended): a letter, then letters, "
                   "digits or '_', at most 30 characters")
    p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    add_source_arguments(p)
    p.set_defaults(func=run)
    # `edgewatch allowlist verify --list FILE`: options go after the word verify
    add_verify_parser(p.add_subparsers(dest="allowlist_action", metavar="ACTION"))


def run(args: argparse.Namespace) -> int:
    from elasticsearch import ApiError, TransportError  # here: the CLI starts without it

    from pipeline.report.store_lines import StoreLineError

    if args.format in ("nft", "ipset"):
        try:
            check_set_name(args.set_name)
        except ValueError as exc:
            raise usage_error("allowlist", f"--set-name: {exc}") from None
    check_output(args.output, "allowlist")
    filters = filters_from(args, "allowlist")
    source, now = open_source(args)
    try:
        al = build_allowlist(source, plausible(filters, now), args.coverage, args.by)
    except (FileNotFoundError, StoreLineError) as exc:
        print(f"edgewatch allowlist: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"edgewatch allowlist: reading {source.description} failed: {exc}",
              file=sys.stderr)
        return 1
    except (ApiError, TransportError) as exc:
        print(f"edgewatch allowlist: reading {source.description} failed: {exc}",
              file=sys.stderr)
        return 1
    print_warnings(source, "allowlist")
    if not al.entries:
        print("edgewatch allowlist: no successful checks in the selection", file=sys.stderr)
        return 1
    text = render_allowlist(al, args.format, args.set_name)
    if args.output:
        return write_output(args.output, text, "allowlist")
    sys.stdout.write(text)
    return 0
