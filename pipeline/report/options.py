"""Command-line options shared by ``edgewatch report`` and ``edgewatch allowlist``.

Where the evidence comes from is decided once, here, in this order: ``--store DIR``, then
``--es-url URL``, then the config file (its ``[elasticsearch]`` section if present, else its
store folder; default ``$EDGEWATCH_CONFIG`` or ``./edgewatch.toml``), then ``ES_URL`` in the
environment, then the default store ``var/data``.

Bad arguments are refused here, before any evidence is read, with one line on stderr and exit
status 2: a window whose ``--from`` is not before its ``--to``, an ``-o`` path that cannot be
written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from datetime import datetime
from pathlib import Path

from pipeline.commands._common import load_or_exit, resolve_config_path
from pipeline.config import ElasticsearchSettings, parse_duration
from pipeline.report.es_source import ElasticsearchSource
from pipeline.report.filters import Filters, parse_time
from pipeline.report.plausible import clock_now
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
    src.add_argument("--strict", action="store_true",
                     help="an unreadable or invalid store line is an error (exit 1) instead "
                     "of being skipped with a warning")
    sel = p.add_argument_group("selection")
    sel.add_argument("--from", dest="start", type=time_arg, metavar="TIME",
                     help="first instant (RFC 3339 or YYYY-MM-DD, UTC)")
    sel.add_argument("--to", dest="end", type=time_arg, metavar="TIME",
                     help="end instant, exclusive")
    sel.add_argument("--target", action="append", default=[], metavar="NAME",
                     help="only this hostname (repeatable)")
    sel.add_argument("--observer", action="append", default=[], metavar="NAME",
                     help="only this observer (repeatable)")
    sel.add_argument("--resolver", action="append", default=[], metavar="NAME",
                     help="only this resolver (repeatable)")
    sel.add_argument("--family", choices=("4", "6"), default=None,
                     help="only IPv4 (A) or only IPv6 (AAAA) answers, e.g. --family 6; "
                     "default both")


def usage_error(command: str, message: str) -> SystemExit:
    """Print ``edgewatch <command>: <message>`` and return the exit to raise (status 2)."""
    print(f"edgewatch {command}: {message}", file=sys.stderr)
    return SystemExit(2)


def filters_from(args: argparse.Namespace, command: str = "report") -> Filters:
    """The selection; a window that ends before it starts is a usage error."""
    if args.start is not None and args.end is not None and args.start >= args.end:
        raise usage_error(command, f"--from {args.start.isoformat()} is not before --to "
                          f"{args.end.isoformat()}")
    family = getattr(args, "family", None)
    return Filters(start=args.start, end=args.end, targets=tuple(args.target),
                   observers=tuple(args.observer), resolvers=tuple(args.resolver),
                   record_types=(FAMILY_RECORD_TYPES[family],) if family else ())


FAMILY_RECORD_TYPES = {"4": "A", "6": "AAAA"}


def time_arg(value: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a time: use RFC 3339 (2026-03-02T06:00:00Z) or YYYY-MM-DD"
        ) from None


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


def check_output(path: Path | None, command: str) -> None:
    """Refuse an ``-o`` path that cannot be written, before the (long) work is done."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise usage_error(command, f"-o {path}: is a directory")
    if not parent.is_dir():
        raise usage_error(command, f"-o {path}: directory {parent} does not exist")
    # Try it rather than ask os.access: root passes every permission test and still meets
    # read-only file systems. An existing file is opened without truncating it; a new one is
    # created and removed again.
    try:
        if path.exists():
            with path.open("r+b"):
                pass
        else:
            with path.open("xb"):
                pass
            path.unlink()
    except OSError as exc:
        raise usage_error(command, f"-o {path}: not writable: {exc.strerror or exc}") from None


def write_output(path: Path, text: str, command: str) -> int:
    """Write the result; a failure now (disk full, a race) is one line and status 1."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"edgewatch {command}: writing {path} failed: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    return 0


def emit(text: str, output: Path | None, command: str) -> int:
    """The result to ``output`` (then ``wrote PATH`` on stderr) or to stdout; the exit status."""
    if output is None:
        sys.stdout.write(text)
        return 0
    if write_output(output, text, command):
        return 1
    print(f"wrote {output}", file=sys.stderr)
    return 0


def print_warnings(source: Source, command: str) -> None:
    """One stderr line per store file whose bad lines were skipped."""
    for line in getattr(source, "warnings", list)():
        print(f"edgewatch {command}: warning: {line}", file=sys.stderr)


def source_from(args: argparse.Namespace) -> Source:
    return open_source(args)[0]


def open_source(args: argparse.Namespace) -> tuple[Source, datetime]:
    """The evidence source and what "now" is for it (the config's scenario clock if any)."""
    progress = Progress(enabled=not args.no_progress)
    strict = bool(getattr(args, "strict", False))
    if args.store is not None:
        config = None
        if args.config is not None:
            config = load_or_exit(args.config)
        return StoreSource(args.store, progress, strict=strict), clock_now(
            config.clock if config else None)
    found = None if args.es_url else resolve_config_path(args.config)
    if args.es_url and args.config:
        found = args.config  # the config still supplies credentials and TLS settings
    config = load_or_exit(found, writes=False) if found else None
    settings = config.elasticsearch if config else None
    url = args.es_url or (None if config else os.environ.get("ES_URL"))
    if url:
        settings = (dataclasses.replace(settings, url=url) if settings
                    else ElasticsearchSettings(url=url))
    now = clock_now(config.clock if config else None)
    if settings is None:
        return StoreSource(config.store_dir if config else Path("var/data"), progress,
                           strict=strict), now
    from pipeline.es.client import make_client

    return ElasticsearchSource(make_client(settings), namespace=args.namespace,
                               checks_index=args.checks_index, runs_index=args.runs_index,
                               progress=progress), now
