"""``edgewatch report``: is allowlisting feasible, and what would it take?

Reads stored check documents and run summaries (Elasticsearch or the ndjson store), never the
probe itself, and prints the verdict with its evidence as a table, JSON or one HTML file.

Exit status: 0 a report was written; 1 nothing to report (no check documents in the selection),
the evidence could not be read, or (``--strict``) a store line was unusable; 2 a bad argument.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.allowlists import ListError, ListVersion, load_version
from pipeline.commands._common import load_or_exit, resolve_config_path
from pipeline.commands.replay import config_models
from pipeline.report import Options
from pipeline.report.by_target import REPLAY_LIMIT, build_by_target
from pipeline.report.html import render_html
from pipeline.report.options import (
    add_source_arguments,
    check_output,
    duration_arg,
    emit,
    filters_from,
    open_source,
    print_warnings,
    share_arg,
    usage_error,
)
from pipeline.report.render import render_json
from pipeline.report.text import render_text

RENDERERS = {"text": render_text, "json": render_json, "html": render_html}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="the allowlisting answer: runs, failures, coverage, decay, verdict",
        description="Summarise stored measurements per resolver and overall (addresses, /24s, "
        "prefixes, ASNs, IP runs with Kaplan–Meier run lengths, failure rates with Wilson "
        "intervals, timings) and answer whether an IP allowlist is feasible: the smallest "
        "lists covering 50/90/99/99.9% of successful checks and how fast a list goes stale.",
        epilog="Exit status: 0 report written; 1 no check documents in the selection (e.g. an "
        "empty store or a --namespace without data), the evidence could not be read, or "
        "--strict met an unusable store line; 2 bad arguments (--from not before --to, an "
        "unwritable -o). Unusable store lines are skipped with one warning per file on stderr; "
        "documents dated outside the plausible window (before 2020, or after tomorrow unless "
        "--from/--to say otherwise) are left out; the report says how many.",
    )
    add_source_arguments(p)
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=tuple(RENDERERS), default="text",
                     help="text table (default), json (schema edgewatch.report/1) or html "
                     "(one self-contained file with charts)")
    out.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    an = p.add_argument_group("analysis")
    an.add_argument("--interval", type=duration_arg, metavar="DURATION",
                    help="sampling interval, e.g. 15m (default: inferred from the runs)")
    an.add_argument("--threshold", type=share_arg, default=0.99, metavar="SHARE",
                    help="a list is stale once it allows less than this share of a later "
                    "day's checks (default 0.99)")
    an.add_argument("--list", dest="lists", action="append", default=[], type=Path,
                    metavar="FILE", help="also report on this deployed allowlist file "
                    "(repeatable; the config's [[allowlists]] are always reported on), e.g. "
                    "--list /etc/nftables.d/api-allow.nft")
    an.add_argument("--replay-limit", type=replay_limit_arg, default=REPLAY_LIMIT,
                    metavar="QUERIES",
                    help="replay (firewall models, resolver choice, EDNS Client Subnet "
                    "evidence) only when the selection holds at most this many queries "
                    f"(default {REPLAY_LIMIT:,}: a replay reads every check document, about "
                    "half a millisecond a query); above it those sections are left out with "
                    "a note; 0 never replays, 'unlimited' always does")
    p.set_defaults(func=run)


def replay_limit_arg(value: str) -> int | None:
    """``--replay-limit``: a count of queries (0 or more) or ``unlimited`` (None)."""
    if value.strip().lower() == "unlimited":
        return None
    try:
        limit = int(value.replace(",", "").replace("_", ""))
    except ValueError:
        limit = -1
    if limit < 0:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number of queries (0 or more) or 'unlimited'")
    return limit


def deployed_lists(args: argparse.Namespace) -> tuple[ListVersion, ...]:
    """The config's ``[[allowlists]]`` (when a config is read) and every ``--list`` file; a
    list that cannot be read is a usage error naming ``file:line``."""
    specs: list[tuple[str, Path]] = []
    found = args.config if args.config is not None else (
        None if args.store is not None or args.es_url else resolve_config_path(None))
    if found is not None:
        specs += [(a.name, a.file) for a in load_or_exit(found, writes=False).allowlists]
    specs += [(path.name, path) for path in args.lists]
    try:
        return tuple(load_version(name, path) for name, path in specs)
    except ListError as exc:
        raise usage_error("report", f"--list: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from elasticsearch import ApiError, TransportError  # here: the CLI starts without it

    from pipeline.report.store_lines import StoreLineError

    check_output(args.output, "report")
    filters = filters_from(args, "report")
    models, netinfo = config_models(args)
    lists = deployed_lists(args)
    source, now = open_source(args)
    try:
        report = build_by_target(source, filters, Options(
            interval_s=args.interval, threshold=args.threshold, now=now, netinfo_table=netinfo,
            allowlists=lists), models, replay_limit=args.replay_limit)
    except (FileNotFoundError, StoreLineError) as exc:
        print(f"edgewatch report: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"edgewatch report: reading {source.description} failed: {exc}", file=sys.stderr)
        return 1
    except (ApiError, TransportError) as exc:
        print(f"edgewatch report: reading {source.description} failed: {exc}", file=sys.stderr)
        return 1
    print_warnings(source, "report")
    if report.replay_note:
        print(f"edgewatch report: {report.replay_note}", file=sys.stderr)
    if report.window.days == 0:
        ignored = report.data.ignored_checks
        why = f" ({ignored:,} outside the plausible window)" if ignored else ""
        print(f"edgewatch report: no check documents in {source.description} for this "
              f"selection{why}: nothing to report", file=sys.stderr)
        return 1
    text = RENDERERS[args.format](report)
    return emit(text, args.output, "report")
