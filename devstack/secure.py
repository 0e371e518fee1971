"""A devstack node with security on, set up the way Elastic's own docker-compose example does it.

The compose stack (docker-compose.yml) cannot run here, so this node reproduces its security
steps with the distribution's own tools, so that tests can exercise the same privileges and
commands: ``elasticsearch-certutil`` makes a CA and an HTTP certificate for 127.0.0.1/localhost,
``elasticsearch-keystore`` stores the ``elastic`` user's bootstrap password (the compose file's
``ELASTIC_PASSWORD`` does the same through the image's entrypoint), and the node serves HTTPS.

Everything lands in the run folder's ``config/`` (the node may only read its certificates from
there), so each secured node has its own CA: ``<run_dir>/config/certs/ca/ca.crt``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devstack.node import (
    DevstackError,
    Node,
    find_java_home,
    free_port,
    prepare_home,
    start_node,
)

ELASTIC_USER = "elastic"
CERT_DAYS = "30"
# Security adds the realms, TLS and the file roles to the start; on a shared 2-core machine the
# plain node's 180 s was seen to pass before the secured node answered.
SECURED_START_TIMEOUT_S = 420.0


def _tool(es_home: Path, java_home: Path, config: Path, *argv: str,
          stdin: str | None = None) -> None:
    """Run one of the distribution's CLI tools against the run folder's config."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ES_JAVA_HOME": str(java_home),
           "ES_PATH_CONF": str(config), "LANG": "C.UTF-8"}
    proc = subprocess.run([str(es_home / "bin" / argv[0]), *argv[1:]], input=stdin, env=env,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                 if ln.strip() and not ln.strip().startswith("at ")]
        raise DevstackError(f"{argv[0]} {argv[1]} failed: {' | '.join(lines[:3])}")


def make_certificates(es_home: Path, java_home: Path, config: Path) -> Path:
    """A CA and a node certificate for 127.0.0.1 and localhost under ``config/certs``; the CA
    certificate's path (what clients pin as ``ES_CA_FILE``)."""
    certs = config / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    ca_zip, node_zip = certs / "ca.zip", certs / "node.zip"
    _tool(es_home, java_home, config, "elasticsearch-certutil", "ca", "--pem", "--silent",
          "--days", CERT_DAYS, "--out", str(ca_zip))
    with zipfile.ZipFile(ca_zip) as zf:
        zf.extractall(certs)
    _tool(es_home, java_home, config, "elasticsearch-certutil", "cert", "--pem", "--silent",
          "--ca-cert", str(certs / "ca" / "ca.crt"), "--ca-key", str(certs / "ca" / "ca.key"),
          "--dns", "localhost", "--ip", "127.0.0.1", "--name", "node", "--days", CERT_DAYS,
          "--out", str(node_zip))
    with zipfile.ZipFile(node_zip) as zf:
        zf.extractall(certs)
    ca_zip.unlink()
    node_zip.unlink()
    return certs / "ca" / "ca.crt"


def set_bootstrap_password(es_home: Path, java_home: Path, config: Path, password: str) -> None:
    """``elastic``'s first password, read by the node from its keystore at first start."""
    if not (config / "elasticsearch.keystore").exists():
        _tool(es_home, java_home, config, "elasticsearch-keystore", "create")
    _tool(es_home, java_home, config, "elasticsearch-keystore", "add", "-x", "-f",
          "bootstrap.password", stdin=password)


def add_file_realm(es_home: Path, java_home: Path, config: Path, roles_yml: str,
                   users: Mapping[str, tuple[str, Sequence[str]]]) -> None:
    """Roles in ``config/roles.yml`` and users in the file realm (``elasticsearch-users``).

    This node cannot hold native users, roles or API keys: the ``.security`` index's mapping
    needs the ``analysis-common`` module, which the integration-test distribution lacks
    (``PUT _security/role`` answers "Unknown filter type [pattern_capture]"). The file realm
    and file roles take the very same role descriptors, so the privileges are tested as written.
    """
    with (config / "roles.yml").open("a", encoding="utf-8") as fh:
        fh.write(roles_yml)
    for name, (password, roles) in users.items():
        _tool(es_home, java_home, config, "elasticsearch-users", "useradd", name,
              "-p", password, "-r", ",".join(roles))


def security_settings() -> dict[str, str]:
    """HTTPS with the certificate above; the transport layer stays plain, which Elasticsearch
    allows for ``discovery.type=single-node`` (a cluster of several nodes needs transport TLS,
    as the compose file's ``cluster`` profile configures)."""
    return {
        "xpack.security.enabled": "true",
        "xpack.security.http.ssl.enabled": "true",
        "xpack.security.http.ssl.key": "certs/node/node.key",
        "xpack.security.http.ssl.certificate": "certs/node/node.crt",
        "xpack.security.http.ssl.certificate_authorities": "certs/ca/ca.crt",
        "xpack.security.transport.ssl.enabled": "false",
    }


def authorized(url: str, ca_file: Path, user: str, password: str) -> bool:
    """``GET _security/_authenticate`` answers 200 for ``user`` over TLS pinned to ``ca_file``:
    the node is up and the native realm (the ``.security`` index) is ready."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(url + "/_security/_authenticate",
                                 headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(req, timeout=2, context=ctx) as resp:
            return json.loads(resp.read()).get("username") == user
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class SecuredNode(Node):
    """A node with its CA certificate and the ``elastic`` password (a test secret)."""

    ca_file: Path = Path()
    password: str = field(default="", repr=False)


def start_secured_node(run_dir: Path, port: int | None = None, heap: str = "512m",
                       password: str | None = None, die_with_parent: bool = False,
                       roles_yml: str = "",
                       users: Mapping[str, tuple[str, Sequence[str]]] | None = None,
                       timeout: float = SECURED_START_TIMEOUT_S) -> SecuredNode:
    """Certificates, keystore, file-realm roles and users, start; returns once ``elastic`` can
    authenticate over HTTPS."""
    java_home = find_java_home()
    es_home = prepare_home(java_home)
    config = run_dir / "config"
    if not config.exists():
        shutil.copytree(es_home / "config", config)
    password = password or secrets.token_urlsafe(18)
    ca_file = make_certificates(es_home, java_home, config)
    set_bootstrap_password(es_home, java_home, config, password)
    if roles_yml or users:
        add_file_realm(es_home, java_home, config, roles_yml, users or {})
    port = port or free_port()
    node = start_node(run_dir=run_dir, port=port, heap=heap, die_with_parent=die_with_parent,
                      settings=security_settings(), timeout=timeout,
                      ready=lambda url: authorized(_https(url), ca_file, ELASTIC_USER, password))
    secured = SecuredNode(url=_https(node.url), pid=node.pid, run_dir=node.run_dir,
                          started_in_s=node.started_in_s, ca_file=ca_file, password=password)
    (run_dir / "url").write_text(secured.url)
    return secured


def _https(url: str) -> str:
    return "https://" + url.split("://", 1)[1]


def start_command(run_dir: Path, port: int, heap: str) -> int:
    """``edgewatch-devstack start --security``: start, then say where the URL, CA and password
    are (the password only as a file path: it is never printed)."""
    password = os.environ.get("ELASTIC_PASSWORD") or None
    run_dir.mkdir(parents=True, exist_ok=True)
    node = start_secured_node(run_dir, port=port, heap=heap, password=password)
    secret = run_dir / "elastic.password"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(node.password + "\n")
    print(f"Elasticsearch (security on, HTTPS) is up at {node.url} "
          f"(started in {node.started_in_s:.1f}s)")
    print(f"  CA certificate: {node.ca_file}   (ES_CA_FILE)")
    print(f"  user elastic, password in {secret}"
          + (" (= $ELASTIC_PASSWORD)" if password else ""))
    print(node.url)
    return 0
