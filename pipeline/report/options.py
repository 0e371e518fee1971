"""Command-line options shared by ``edgewatch report`` and ``edgewatch allowlist``.

Where the evidence comes from is decided once, here, in this order: ``--store DIR``, then
``--es-url URL``, then the config file (its ``[elasticsearch]`` section if present, else its
store folder; default ``$EDGEWATCH_CONFIG`` or ``./edgewatch.toml``), then ``ES_URL`` in the
environment, then the default store ``var/data``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from pipeline.commands._common import load_or_exit, resolve_config_path
from pipeline.config import ElasticsearchSettings, parse_duration
from pipeline.report.es_source import ElasticsearchSource
from pipeline.report.filters import Filters, parse_time
from pipeline.report.progress import Progress
from pipeline.report.rows import Source
from pipeline.report.store_source import StoreSource


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("evidence source")
    src.add_argument("-c", "--config", type=Path,
                     help="edgewatch TOML config (store dir, cluster); default: "
                     "$EDGEWATCH_CONFIG or ./edgewatch.toml")
    src.add_argument("--store", type=Path, help="read this ndjson store folder")
    src.add_argument("--es-url", help="read this Elasticsearch cluster (overrides the config url)")
    src.add_argument("--namespace", default="*",
                     help="data stream namespace to read (default: all, '*')")
    src.add_argument("--checks-index", help="read check documents from this index/pattern")
    src.add_argument("--runs-index", help="read run summaries from this index/pattern")
    src.add_argument("--no-progress", action="store_true",
                     help="no progress line on stderr during long reads")
    sel = p.add_argument_group("selection")
    sel.add_argument("--from", dest="start", type=parse_time, metavar="TIME",
                     help="first instant (RFC 3339 or YYYY-MM-DD, UTC)")
    sel.add_argument("--to", dest="end", type=parse_time, metavar="TIME",
                     help="end instant, exclusive")
    sel.add_argument("--target", action="append", default=[], metavar="NAME",
                     help="only this hostname (repeatable)")
    sel.add_argument("--observer", action="append", default=[], metavar="NAME",
                     help="only this observer (repeatable)")
    sel.add_argument("--resolver", action="append", default=[], metavar="NAME",
                     help="only this resolver (repeatable)")


def filters_from(args: argparse.Namespace) -> Filters:
    return Filters(start=args.start, end=args.end, targets=tuple(args.target),
                   observers=tuple(args.observer), resolvers=tuple(args.resolver))


def duration_arg(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def share_arg(value: str) -> float:
    """``0.99``, ``99%`` → 0.99."""
    v = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError("must be a share in (0, 1] such as 0.99 or 99%")
    return v


def source_from(args: argparse.Namespace) -> Source:
    progress = Progress(enabled=not args.no_progress)
    if args.store is not None:
        return StoreSource(args.store, progress)
    found = None if args.es_url else resolve_config_path(args.config)
    if args.es_url and args.config:
        found = args.config  # the config still supplies credentials and TLS settings
    config = load_or_exit(found, writes=False) if found else None
    settings = config.elasticsearch if config else None
    url = args.es_url or (None if config else os.environ.get("ES_URL"))
    if url:
        settings = (dataclasses.replace(settings, url=url) if settings
                    else ElasticsearchSettings(url=url))
    if settings is None:
        return StoreSource(config.store_dir if config else Path("var/data"), progress)
    from pipeline.es.client import make_client

    return ElasticsearchSource(make_client(settings), namespace=args.namespace,
                               checks_index=args.checks_index, runs_index=args.runs_index,
                               progress=progress)
