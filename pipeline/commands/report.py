"""``edgewatch report``: is allowlisting feasible, and what would it take?

Reads stored check documents and run summaries (Elasticsearch or the ndjson store), never the
probe itself, and prints the verdict with its evidence as a table, JSON or one HTML file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.report import Options, build_report
from pipeline.report.html import render_html
from pipeline.report.options import (
    add_source_arguments,
    duration_arg,
    filters_from,
    share_arg,
    source_from,
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from elasticsearch import ApiError, TransportError  # here: the CLI starts without it

    source = source_from(args)
    try:
        report = build_report(source, filters_from(args),
                              Options(interval_s=args.interval, threshold=args.threshold))
    except FileNotFoundError as exc:
        print(f"edgewatch report: {exc}", file=sys.stderr)
        return 1
    except (ApiError, TransportError) as exc:
        print(f"edgewatch report: reading {source.description} failed: {exc}", file=sys.stderr)
        return 1
    text = RENDERERS[args.format](report)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
