"""``edgewatch setup``: install or update the Elasticsearch side (templates, policy, runs index).

Run it before the first cycle and after every upgrade; it is idempotent and says per object what
it did, so a second run reporting "unchanged" everywhere is the proof that the cluster matches
``mappings/``. It refuses (non-zero exit, one clear line) when the cluster is unreachable,
refuses the credentials, or is not Elasticsearch 9.x.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pipeline.commands._common import resolve_config_path
from pipeline.config import ConfigError, ElasticsearchSettings, load_config

if TYPE_CHECKING:
    from pipeline.es.installer import Outcome

# pipeline.es (and with it the Elasticsearch client, ~0.3 s) is imported inside the functions:
# every `edgewatch` command builds this module's parser at start-up.

EXIT_OK, EXIT_CONFLICT, EXIT_CONFIG, EXIT_UNREACHABLE, EXIT_UNAUTHORIZED, EXIT_UNSUPPORTED = (
    0, 1, 2, 3, 4, 5)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "setup", help="install/update Elasticsearch templates, lifecycle policy and runs index",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit status: 0 done (or nothing to change), 1 some mappings or index settings\n"
        "conflict with what is installed, 2 bad configuration, 3 cluster unreachable,\n"
        "4 credentials refused, 5 any other refusal (e.g. not Elasticsearch 9.x)")
    p.add_argument("--config", type=Path, default=None,
                   help="edgewatch TOML config (default: $EDGEWATCH_CONFIG or ./edgewatch.toml)")
    p.add_argument("--namespace", help="override elasticsearch.namespace")
    p.add_argument("--dry-run", action="store_true",
                   help="report what would change, change nothing")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> ElasticsearchSettings:
    found = resolve_config_path(args.config)  # --config, $EDGEWATCH_CONFIG, ./edgewatch.toml
    if found is None:
        raise ConfigError([("--config", "required: pass --config FILE, set EDGEWATCH_CONFIG, or "
                            "create ./edgewatch.toml (`edgewatch init`)")])
    cfg = load_config(found)
    if cfg.elasticsearch is None:
        raise ConfigError([("elasticsearch.url", "no [elasticsearch] section and no ES_URL")])
    settings = cfg.elasticsearch
    if args.namespace:
        settings = replace(settings, namespace=args.namespace)
    return settings


def setup(settings: ElasticsearchSettings, dry_run: bool = False,
          out: TextIO = sys.stdout) -> list[Outcome]:
    """Detect, install, report. Raises ``ClusterRefused`` when the cluster cannot be used."""
    from pipeline.es import installer
    from pipeline.es.client import make_client, redact_url
    from pipeline.es.cluster import detect, refusing

    client = make_client(settings)
    try:
        caps = detect(client, settings.url)
        print(f"Elasticsearch {caps.version} at {redact_url(settings.url)} "
              f"(namespace {settings.namespace})", file=out)
        with refusing(settings.url, "installing templates"):
            outcomes = installer.install(client, settings.namespace, caps, dry_run=dry_run,
                                         replicas=settings.replicas)
    finally:
        client.close()
    width = max(len(f"{o.kind} {o.name}") for o in outcomes)
    for o in outcomes:
        label = f"{o.kind} {o.name}"
        detail = f"  ({o.detail})" if o.detail else ""
        print(f"  {label:<{width}}  {o.action}{detail}", file=out)
    changed = sum(o.changed for o in outcomes)
    if dry_run:
        summary = "dry run: nothing was changed"
    else:
        summary = f"{changed} object(s) changed" if changed else "no change"
    print(summary, file=out)
    return outcomes


def _one_line(exc: ConfigError) -> str:
    return "; ".join(f"{key}: {reason}" for key, reason in exc.problems)


def run(args: argparse.Namespace) -> int:
    from pipeline.es.cluster import ClusterRefused, ClusterUnauthorized, ClusterUnreachable
    from pipeline.es.installer import CONFLICT

    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"edgewatch setup: {_one_line(exc) if len(exc.problems) == 1 else exc}",
              file=sys.stderr)
        return EXIT_CONFIG
    try:
        outcomes = setup(settings, dry_run=args.dry_run)
    except ConfigError as exc:  # ClientSettingsError: a URL or CA file the client cannot use
        print(f"edgewatch setup: {_one_line(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    except ClusterRefused as exc:
        print(f"edgewatch setup: refused: {exc}", file=sys.stderr)
        if isinstance(exc, ClusterUnreachable):
            return EXIT_UNREACHABLE
        if isinstance(exc, ClusterUnauthorized):
            return EXIT_UNAUTHORIZED
        return EXIT_UNSUPPORTED
    if any(o.action == CONFLICT for o in outcomes):
        print("edgewatch setup: some mappings or index settings conflict with what is "
              "installed (see above)",
              file=sys.stderr)
        return EXIT_CONFLICT
    return EXIT_OK
