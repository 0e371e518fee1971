"""``edgewatch privileges``: the least privileges of a probe (writer) and of setup, shown,
checked against the configured credentials, or granted as a writer API key.

Every probe host should write with a key that can add documents to one namespace and do nothing
else (docs/MANY_PROBES.md lists each privilege and why). The compose stack's setup container runs
``create-writer`` with the ``elastic`` user; a probe can run ``check`` before its first cycle to
learn, in one line, which privilege its key lacks.

examples:
  edgewatch privileges show --role writer --namespace default      # JSON for PUT _security/role
  edgewatch privileges show --role writer --format roles-yml       # for a file realm roles.yml
  ES_API_KEY=... edgewatch privileges check --config edgewatch.toml --role writer
  ES_USERNAME=elastic ES_PASSWORD=... edgewatch privileges create-writer \\
      --config edgewatch.toml --api-key-file /run/secrets/writer.key
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.commands._common import add_config_argument, resolve_config_path
from pipeline.config import ConfigError, ElasticsearchSettings, load_config
from pipeline.es import privileges

if TYPE_CHECKING:  # the client (~0.3 s to import) is loaded only when a cluster is asked
    from elasticsearch import Elasticsearch

EXIT_OK, EXIT_MISSING, EXIT_CONFIG, EXIT_REFUSED = 0, 1, 2, 3
PROG = "edgewatch privileges"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "privileges", help="show, check or grant the least privileges of a probe and of setup",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit status: 0 done (every privilege held), 1 a privilege is missing, "
        "2 bad configuration, 3 the cluster refused or cannot be reached")
    p.add_argument("action", choices=("show", "check", "create-writer"))
    add_config_argument(p)
    p.add_argument("--role", choices=sorted(privileges.ROLES), default="writer",
                   help="which role (default: writer)")
    p.add_argument("--namespace", help="data stream namespace (default: the config's, else "
                   "'default')")
    p.add_argument("--format", choices=("json", "roles-yml"), default="json",
                   help="show: JSON role descriptor or a roles.yml entry")
    p.add_argument("--role-name", default=privileges.ROLE_NAMES["writer"],
                   help="create-writer: the role to create or update")
    p.add_argument("--key-name", default="edgewatch-writer",
                   help="create-writer: the API key's name (one per probe host is best)")
    p.add_argument("--api-key-file", type=Path,
                   help="create-writer: write the new key as id:key here (mode 0600); "
                   "required, the key is never printed")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> ElasticsearchSettings | None:
    found = resolve_config_path(args.config)
    if found is None:
        return None
    return load_config(found).elasticsearch


def run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"{PROG}: {'; '.join(f'{k}: {r}' for k, r in exc.problems)}", file=sys.stderr)
        return EXIT_CONFIG
    namespace = args.namespace or (settings.namespace if settings else "default")
    role = privileges.ROLES[args.role](namespace)
    if args.action == "show":
        name = privileges.ROLE_NAMES[args.role]
        text = privileges.roles_yml({name: role}) if args.format == "roles-yml" \
            else json.dumps(role, indent=2) + "\n"
        sys.stdout.write(text)
        return EXIT_OK
    if args.action == "create-writer" and args.role != "writer":
        print(f"{PROG}: --role: create-writer grants the writer role only (setup runs as an "
              "administrator)", file=sys.stderr)
        return EXIT_CONFIG
    if settings is None:
        print(f"{PROG}: {args.action} needs a cluster: pass --config FILE with an "
              "[elasticsearch] section (or set ES_URL)", file=sys.stderr)
        return EXIT_CONFIG
    if args.action == "create-writer" and args.api_key_file is None:
        print(f"{PROG}: --api-key-file: required for create-writer (the key is never printed)",
              file=sys.stderr)
        return EXIT_CONFIG
    return _against_cluster(args, settings, role)


def _against_cluster(args: argparse.Namespace, settings: ElasticsearchSettings,
                     role: dict[str, Any]) -> int:
    from pipeline.es.client import make_client
    from pipeline.es.cluster import ClusterRefused, refusing

    try:
        client = make_client(settings)
    except ConfigError as exc:
        print(f"{PROG}: {'; '.join(f'{k}: {r}' for k, r in exc.problems)}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        with refusing(settings.url, f"{args.action} ({args.role} role)"):
            if args.action == "check":
                return _check(client, _who(settings), args.role, role)
            return _create_writer(client, args, role)
    except ClusterRefused as exc:
        print(f"{PROG}: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        client.close()


def _who(settings: ElasticsearchSettings) -> str:
    """The credentials, named without their secret: ``_has_privileges`` answers with the key's
    owner, which would blame the administrator who made the key."""
    if settings.api_key is not None:  # not revealed here (pipeline/es/client.py only)
        return "the API key"
    return f"user {settings.username}" if settings.username else "anonymous"


def _check(client: Elasticsearch, who: str, role_label: str, role: dict[str, Any]) -> int:
    answer = client.security.has_privileges(**privileges.has_privileges_body(role)).body
    lacking = privileges.missing(answer)
    if lacking:
        print(f"{PROG}: {who} lacks {len(lacking)} privilege(s) of the {role_label} role: "
              f"{', '.join(lacking)}", file=sys.stderr)
        return EXIT_MISSING
    held = len(role["cluster"]) + sum(len(e["names"]) * len(e["privileges"])
                                      for e in role["indices"])
    print(f"{who} holds all {held} privilege(s) of the {role_label} role")
    return EXIT_OK


def _create_writer(client: Elasticsearch, args: argparse.Namespace,
                   role: dict[str, Any]) -> int:
    """The role (for users and for people to read) and a key limited to exactly that role."""
    client.security.put_role(name=args.role_name, **role)
    key = client.security.create_api_key(
        name=args.key_name, role_descriptors={args.role_name: role},
        metadata={"application": "edgewatch", "role": args.role_name}).body
    path: Path = args.api_key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{key['id']}:{key['api_key']}\n")
    print(f"role {args.role_name} written; API key {key['name']} (id {key['id']}) "
          f"saved to {path}")
    return EXIT_OK
