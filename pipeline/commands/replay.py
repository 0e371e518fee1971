"""``edgewatch replay``: would a firewall FQDN object, another resolver or a network block have
held? The recorded answers walked through the ``[[firewall_models]]`` of the config.

Reads the stored check documents (ndjson store or Elasticsearch, as ``edgewatch report``) and
prints, per target: each model's blocked checks per client resolver, the resolver-choice
matrix with daily Jaccard overlaps, the ECS evidence, and the cost of allowlisting blocks.

Exit status: 0 written; 1 nothing to replay or the evidence could not be read; 2 bad arguments
(including an unknown ``--model``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from pipeline.report.options import (
    add_source_arguments,
    check_output,
    duration_arg,
    emit,
    filters_from,
    open_source,
    print_warnings,
    time_arg,
    usage_error,
)

EPILOG = """\
A firewall model is a table in the config, for example:

  [[firewall_models]]
  name = "fw-ttl-cap8"           # a label
  kind = "fqdn"                  # an FQDN object that re-resolves the name (the default)
  resolver = "lab-google-a"      # whose recorded answers the firewall sees
  refresh = "ttl"                # "ttl": max(served TTL, min_refresh); or a fixed "5m"
  min_refresh = "10m"
  max_addresses = 8              # keeps the first 8 in the order returned (0 = no cap)
  keep_previous = "1h"           # addresses that dropped out stay allowed this long (0 = none)

At every recorded cycle the firewall refreshes when due (taking its resolver's answer of that
cycle, cut to the cap; a failed answer keeps the previous set); each successful answer of each
resolver (a server's resolver) is then fully blocked (no address allowed) or partly blocked
(some not allowed). Under the lab's accelerated clock the recorded TTLs are real seconds while
the cycles are scenario time, so a "ttl" model there refreshes at min_refresh.
Rotation faster than the cadence is invisible: the figures are lower bounds.

Two more kinds, to compare against:

  [[firewall_models]]
  name = "living-6h"
  kind = "living"                # the list `edgewatch allowlist serve` would have served
  refresh = "5m"                 # how often the firewall fetches it
  hold = "6h"                    # its rule (docs/LIVING_LIST.md); also window, by, floor

  [[firewall_models]]
  name = "static-day1"
  kind = "static"                # a list deployed once, e.g. from `edgewatch allowlist`
  file = "allow-day1.nft"

Examples:
  edgewatch replay --config edgewatch.toml
  edgewatch replay --config edgewatch.toml --model fw-ttl-cap8 --since 2026-03-02 --format json

Exit status: 0 written; 1 nothing to replay or the evidence could not be read; 2 bad arguments.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay", help="replay recorded answers through firewall models, resolver choice, blocks",
        description="Walk the recorded DNS answers, cycle by cycle, through the firewall models "
        "of the config ([[firewall_models]]) and through a firewall asking each configured "
        "resolver, per target; price allowlisting /24s, announced prefixes and whole ASNs.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p)
    p.add_argument("--since", dest="start", type=time_arg, metavar="TIME",
                   help="same as --from")
    p.add_argument("--until", dest="end", type=time_arg, metavar="TIME", help="same as --to")
    p.add_argument("--model", action="append", default=[], metavar="NAME",
                   help="only this [[firewall_models]] entry (repeatable; default: all)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    p.add_argument("--interval", type=duration_arg, metavar="DURATION",
                   help="sampling interval, e.g. 15m (default: the median gap between cycles)")
    p.set_defaults(func=run)


def config_models(args: argparse.Namespace) -> tuple[list, Path | None]:
    """The config's ``[[firewall_models]]`` (only those of ``--model`` if given) and its
    netinfo table (which prices whole ASNs); none without a config."""
    from pipeline.commands._common import load_or_exit, resolve_config_path

    found = resolve_config_path(args.config) if args.config or not args.store else None
    config = load_or_exit(found, writes=False) if found else None
    models = list(config.firewall_models) if config else []
    if getattr(args, "model", None):
        known = {m.name for m in models}
        unknown = [n for n in args.model if n not in known]
        if unknown:
            raise usage_error("replay", f"--model {unknown[0]}: no such [[firewall_models]] "
                              f"entry (known: {', '.join(sorted(known)) or 'none'})")
        models = [m for m in models if m.name in args.model]
    return models, config.netinfo_table if config else None


def run(args: argparse.Namespace) -> int:
    from elasticsearch import ApiError, TransportError

    from pipeline.replay.build import replay_source
    from pipeline.replay.text import render_replay_json, render_replay_text
    from pipeline.report import Options, build_report
    from pipeline.report.store_lines import StoreLineError

    check_output(args.output, "replay")
    filters = filters_from(args, "replay")
    models, netinfo = config_models(args)
    source, now = open_source(args)
    try:
        replay = replay_source(source, filters, models, args.interval)
        for t in replay.targets:  # the blocks come from the report's coverage of that target
            rep = build_report(source, dataclasses.replace(filters, targets=(t.target,)),
                               Options(interval_s=args.interval, now=now, netinfo_table=netinfo))
            t.blocks = rep.blocks
    except (FileNotFoundError, StoreLineError) as exc:
        print(f"edgewatch replay: {exc}", file=sys.stderr)
        return 1
    except (OSError, ApiError, TransportError) as exc:
        print(f"edgewatch replay: reading {source.description} failed: {exc}", file=sys.stderr)
        return 1
    print_warnings(source, "replay")
    if not replay.targets:
        print(f"edgewatch replay: no check documents in {source.description} for this "
              "selection: nothing to replay", file=sys.stderr)
        return 1
    text = (render_replay_json if args.format == "json" else render_replay_text)(replay)
    return emit(text, args.output, "replay")
