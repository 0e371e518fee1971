"""``edgewatch init``: write a configuration to start from, in the current folder.

An installed edgewatch has no ``config/`` folder beside it, so "copy the example" is not
something a new user can do by hand without knowing where site-packages is. ``init`` writes the
shipped example (14 public resolvers, the Let's Encrypt ACME endpoint) to ``./edgewatch.toml``,
with the state and the local store kept in ``./var`` next to it (the example's
``/var/lib/edgewatch`` is for a system install and is not writable by most users), and refuses
to overwrite an existing file unless told to.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.shipped import shipped_path

EXIT_OK, EXIT_USAGE = 0, 2
# The example's system-wide folders; in a config that lives in a working folder, a path relative
# to the config file (which is how edgewatch reads relative paths) keeps everything beside it.
SYSTEM_DIR = '"/var/lib/edgewatch/'
LOCAL_DIR = '"var/'


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "init", help="write ./edgewatch.toml from the example configuration, to start from",
        description="Write the example configuration (14 public resolvers, the Let's Encrypt "
        "ACME endpoint) to ./edgewatch.toml, or PATH, with the state and the local store in "
        "var/ beside it. An existing file is left alone unless --force is given.",
        epilog="exit status: 0 written, 2 the file exists (without --force) or cannot be "
        "written")
    p.add_argument("path", nargs="?", type=Path, default=Path("edgewatch.toml"),
                   help="where to write it (default: ./edgewatch.toml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--alert-rules", action="store_true",
                   help="also write edgewatch.alerts.yml beside it: the example Prometheus "
                   "alert rules for [metrics] (docs/METRICS.md)")
    p.set_defaults(func=run)


def example_text() -> str:
    """The shipped example, with its state and store folders made relative to the config."""
    return shipped_path("example-config").read_text(encoding="utf-8").replace(
        SYSTEM_DIR, LOCAL_DIR)


ALERTS = "edgewatch.alerts.yml"


def _write_alert_rules(path: Path, force: bool) -> int:
    """The shipped alert rules beside the config; 0, or the exit status of a one-line error."""
    if path.exists() and not force:
        print(f"edgewatch init: {path} already exists (use --force to overwrite it)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        path.write_bytes(shipped_path("alert-rules").read_bytes())
    except OSError as exc:
        print(f"edgewatch init: cannot write {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {path}: Prometheus alert rules (rule_files: in prometheus.yml)")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    path: Path = args.path
    if path.is_dir():
        path = path / "edgewatch.toml"
    if path.exists() and not args.force:
        print(f"edgewatch init: {path} already exists (use --force to overwrite it)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        text = example_text()
    except OSError as exc:
        print(f"edgewatch init: cannot read the shipped example "
              f"{shipped_path('example-config')}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"edgewatch init: cannot write {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if args.alert_rules and (code := _write_alert_rules(path.parent / ALERTS, args.force)):
        return code
    config = "" if path == Path("edgewatch.toml") else f" --config {path}"
    print(f"wrote {path}: 14 public resolvers, the Let's Encrypt ACME endpoint, state and data "
          f"in var/ beside it; edit it, then:\n"
          f"  edgewatch run --once{config}      # one cycle into the local store\n"
          f"  edgewatch report{config}\n"
          f"  ES_URL=http://127.0.0.1:9200 edgewatch setup{config}   # to index into a cluster")
    return EXIT_OK
