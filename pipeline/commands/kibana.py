"""``edgewatch kibana``: put edgewatch's dashboard and visualizations into Kibana.

``edgewatch kibana import --kibana-url URL`` posts ``kibana/edgewatch.ndjson`` (data views,
Vega visualizations, a saved search of failures, the dashboard) to Kibana's saved-objects import
API, replacing earlier versions of the same objects (outside the default space under ids
derived from the space, so that they stay the same there too); it prints how many objects
Kibana accepted and every object it rejected, and exits non-zero when any was rejected.
``edgewatch kibana export-path`` prints where that file is, for importing it by hand (Stack
Management → Saved objects → Import).

Credentials: KIBANA_API_KEY, or KIBANA_USERNAME and KIBANA_PASSWORD (never printed).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.kibana import (
    Credentials,
    ImportOptions,
    KibanaError,
    KibanaUnauthorized,
    KibanaUnreachable,
    describe_error,
    export_path,
    import_objects,
    redact_url,
)

# Same meanings as `edgewatch setup`: 1 = done but something in it failed.
EXIT_OK, EXIT_OBJECT_ERRORS, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_UNAUTHORIZED, EXIT_REFUSED = (
    0, 1, 2, 3, 4, 5)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "kibana", help="import edgewatch's Kibana dashboard and visualizations",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=_usage(p))
    sub = p.add_subparsers(dest="kibana_command", metavar="ACTION")

    imp = sub.add_parser(
        "import", help="import the saved objects into Kibana (overwrites earlier versions)",
        description="POST the saved objects to Kibana's /api/saved_objects/_import?overwrite=true."
        " Credentials: KIBANA_API_KEY, or KIBANA_USERNAME + KIBANA_PASSWORD.",
        epilog="exit status: 0 every object imported, 1 Kibana rejected some object (each is "
        "listed), 2 bad arguments or an unusable file, URL or CA file, 3 Kibana unreachable, "
        "4 credentials refused, 5 any other refusal by Kibana")
    imp.add_argument("--kibana-url", default=os.environ.get("KIBANA_URL"),
                     help="Kibana base URL incl. any base path, e.g. http://127.0.0.1:5601 "
                     "(default: $KIBANA_URL)")
    imp.add_argument("--space", default=os.environ.get("KIBANA_SPACE"),
                     help="Kibana space id (default: $KIBANA_SPACE, else the default space); "
                     "outside the default space the objects get ids derived from the space, "
                     "the same on every import, e.g. --space ops")
    imp.add_argument("--file", type=Path, default=None,
                     help=f"ndjson to import (default: {export_path()})")
    imp.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                     help="keep retrying this long while Kibana is unreachable or starting "
                     "(HTTP 503)")
    imp.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                     help="timeout of one request")
    imp.add_argument("--ca-file", type=Path, default=os.environ.get("KIBANA_CA_FILE"),
                     help="CA bundle for an https Kibana (default: $KIBANA_CA_FILE)")
    imp.add_argument("--insecure", action="store_true",
                     help="do not verify Kibana's TLS certificate")
    imp.set_defaults(func=run_import)

    path = sub.add_parser("export-path", help="print the path of the shipped saved objects")
    path.set_defaults(func=run_export_path)


def _usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """`edgewatch kibana` alone: show what the actions are rather than fail obscurely."""
    def show(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return show


def run_export_path(args: argparse.Namespace) -> int:
    path = export_path()
    print(path)
    if not path.is_file():
        print(f"edgewatch kibana: {path} does not exist", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def run_import(args: argparse.Namespace) -> int:
    if not args.kibana_url:
        print("edgewatch kibana import: --kibana-url (or KIBANA_URL) is required",
              file=sys.stderr)
        return EXIT_USAGE
    path: Path = args.file or export_path()
    try:
        content = path.read_bytes()
    except OSError as exc:
        print(f"edgewatch kibana import: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    count = sum(1 for line in content.splitlines() if line.strip())
    try:
        creds = Credentials.from_env()
        result = import_objects(args.kibana_url, content, ImportOptions(
            space=args.space, credentials=creds,
            filename=path.name if path.name.endswith(".ndjson") else "edgewatch.ndjson",
            timeout=args.timeout, wait=args.wait, ca_file=args.ca_file,
            verify=not args.insecure))
    except KibanaUnreachable as exc:
        print(f"edgewatch kibana import: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KibanaUnauthorized as exc:
        print(f"edgewatch kibana import: {exc}", file=sys.stderr)
        return EXIT_UNAUTHORIZED
    except KibanaError as exc:
        print(f"edgewatch kibana import: {exc}", file=sys.stderr)
        return EXIT_USAGE if type(exc) is KibanaError else EXIT_REFUSED
    space = f" (space {args.space})" if args.space else ""
    print(f"imported {result.success_count} of {count} objects from {path} into "
          f"{redact_url(args.kibana_url)}{space}")
    for warning in result.warnings:
        print(f"  warning: {warning.get('message') or warning}")
    for obj in result.renamed():
        print(f"  warning: Kibana stored {obj.get('type')} {obj.get('id')} as "
              f"{obj.get('destinationId')} (that id exists in another space)")
    base = redact_url(args.kibana_url).rstrip("/")
    prefix = f"/s/{args.space}" if args.space and args.space != "default" else ""
    for obj in result.results:
        if obj.get("type") == "dashboard":
            board = obj.get("destinationId") or obj.get("id")
            print(f"dashboard: {base}{prefix}/app/dashboards#/view/{board}")
    if result.errors or not result.success:
        print(f"edgewatch kibana import: Kibana rejected {len(result.errors)} object(s):",
              file=sys.stderr)
        for error in result.errors:
            print(f"  {describe_error(error)}", file=sys.stderr)
        return EXIT_OBJECT_ERRORS
    return EXIT_OK
