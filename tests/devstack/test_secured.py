"""Least privilege against a node with security on, HTTPS and a CA of its own.

The roles are the ones ``edgewatch privileges show`` prints (the compose setup container grants
the same through the API); here they live in the node's file realm, because this distribution
cannot create the ``.security`` index (devstack/secure.py says why). The setup role runs
``edgewatch setup``, the writer role runs ``edgewatch run`` against the lab and everything the
store holds arrives; the writer can do nothing else; a writer missing one privilege is told so in
one line.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import AuthorizationException, Elasticsearch, helpers

from devstack.secure import SecuredNode, start_secured_node
from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.es import names, privileges
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration
NS = "secured"
CYCLES = 6
PASSWORDS = {name: secrets.token_urlsafe(12) for name in
             ("setup", "writer", "no_index", "no_monitor", "no_view")}

lab = lab_fixture("quick", speed=900.0, scope="module")


def _roles() -> dict[str, dict]:
    writer = privileges.writer_role(NS)
    return {"edgewatch_setup": privileges.setup_role(NS), "edgewatch_writer": writer,
            "writer_no_index": privileges.without(writer, "index"),
            "writer_no_monitor": privileges.without(writer, "monitor"),
            "writer_no_view": privileges.without(writer, "view_index_metadata")}


@pytest.fixture(scope="module")
def node() -> Iterator[SecuredNode]:
    run_dir = Path(tempfile.mkdtemp(prefix="edgewatch-secured-es-"))
    users = {"setup": (PASSWORDS["setup"], ["edgewatch_setup"]),
             "writer": (PASSWORDS["writer"], ["edgewatch_writer"]),
             "no_index": (PASSWORDS["no_index"], ["writer_no_index"]),
             "no_monitor": (PASSWORDS["no_monitor"], ["writer_no_monitor"]),
             "no_view": (PASSWORDS["no_view"], ["writer_no_view"])}
    secured = start_secured_node(run_dir, heap="512m", die_with_parent=True,
                                 roles_yml=privileges.roles_yml(_roles()), users=users)
    try:
        yield secured
    finally:
        secured.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def _client(node: SecuredNode, user: str, password: str) -> Elasticsearch:
    return Elasticsearch(node.url, ca_certs=str(node.ca_file), basic_auth=(user, password),
                         request_timeout=30)


@pytest.fixture(scope="module")
def admin(node: SecuredNode) -> Iterator[Elasticsearch]:
    client = _client(node, "elastic", node.password)
    yield client
    client.close()


def _config(work: Path, node: SecuredNode, lab: LabStack, user: str) -> Path:
    """The lab's config plus a cluster section: user inline (not a secret), password in a
    file, the node's CA pinned."""
    secret = work / f"{user}.password"
    secret.write_text(PASSWORDS[user] + "\n")
    secret.chmod(0o600)
    config = work / f"{user}.toml"
    config.write_text(lab.config_path.read_text() + f"""
[store]
dir = "{work / 'data'}"

[state]
dir = "{work / 'state'}"

[elasticsearch]
url = "{node.url}"
namespace = "{NS}"
username = "{user}"
password_file = "{secret}"
ca_file = "{node.ca_file}"
spool_dir = "{work / 'spool'}"
dead_letter_dir = "{work / 'dead-letter'}"
flush_interval = "200ms"

[sinks]
enabled = ["elasticsearch", "ndjson"]
""")
    return config


def _edgewatch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def measured(node: SecuredNode, lab: LabStack, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("secured")
    setup = _edgewatch("setup", "--config", str(_config(work, node, lab, "setup")))
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    writer = _config(work, node, lab, "writer")
    checked = _edgewatch("privileges", "check", "--config", str(writer))
    run = _edgewatch("run", "--config", str(writer), "--cycles", str(CYCLES), "--quiet")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return {"work": work, "setup": setup, "check": checked, "run": run}


def _ids(admin: Elasticsearch, index: str) -> list[str]:
    admin.indices.refresh(index=index)
    return [h["_id"] for h in helpers.scan(admin, index=index, query={"query": {"match_all": {}}})]


def test_setup_role_installs_everything(measured, admin: Elasticsearch) -> None:
    assert "refused" not in measured["setup"].stderr
    assert admin.indices.exists(index=names.runs_index(NS))
    assert admin.indices.exists_index_template(name=names.CHECK_INDEX_TEMPLATE)


def test_writer_run_delivers_everything_the_store_holds(measured, admin: Elasticsearch) -> None:
    store = measured["work"] / "data"
    want = {d["_id"] for d in read_store(store, "checks")}
    got = _ids(admin, names.check_data_stream(NS))
    assert want and len(got) == len(set(got)) and set(got) == want
    runs = {d["_id"] for d in read_store(store, "runs")}
    assert set(_ids(admin, names.runs_index(NS))) == runs
    assert not [p for p in (measured["work"] / "dead-letter").glob("*.ndjson")
                if p.stat().st_size]
    for text in (measured["run"].stdout, measured["run"].stderr,
                 *(p.read_text(errors="replace") for p in measured["work"].rglob("*.log"))):
        assert PASSWORDS["writer"] not in text


def test_writer_holds_exactly_the_documented_privileges(measured, node: SecuredNode) -> None:
    assert measured["check"].returncode == 0, measured["check"].stderr
    role = privileges.writer_role(NS)
    held = len(role["cluster"]) + sum(len(e["names"]) * len(e["privileges"])
                                      for e in role["indices"])
    assert f"holds all {held} privilege(s) of the writer role" in measured["check"].stdout
    writer = _client(node, "writer", PASSWORDS["writer"])
    try:  # add documents, nothing else: no reading, no deleting, no template changes
        with pytest.raises(AuthorizationException):
            writer.search(index=names.check_data_stream(NS))
        with pytest.raises(AuthorizationException):
            writer.indices.delete(index=names.runs_index(NS))
        with pytest.raises(AuthorizationException):
            writer.indices.delete_index_template(name=names.CHECK_INDEX_TEMPLATE)
        with pytest.raises(AuthorizationException):  # another namespace is out of reach
            writer.index(index=names.runs_index("other"), id="x", document={})
        writer.cluster.health()  # the per-cycle health question is allowed
    finally:
        writer.close()


@pytest.mark.parametrize(("user", "lacking"), [
    ("no_index", f"index on {names.runs_index(NS)}"),
    ("no_monitor", "cluster:monitor"),
    ("no_view", f"view_index_metadata on {names.runs_index(NS)}"),
])
def test_a_writer_missing_one_privilege_is_told_in_one_line(
        measured, node: SecuredNode, lab: LabStack, tmp_path: Path, user: str,
        lacking: str) -> None:
    config = _config(tmp_path, node, lab, user)
    proc = _edgewatch("privileges", "check", "--config", str(config))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"lacks 1 privilege(s) of the writer role: "
                                                 f"{lacking}"), proc.stderr
    assert PASSWORDS[user] not in proc.stderr + proc.stdout


def _run_once(config: Path) -> subprocess.CompletedProcess:
    return _edgewatch("run", "--config", str(config), "--once", "--quiet")


def test_run_with_a_wrong_password_stops_with_one_line(
        measured, node: SecuredNode, lab: LabStack, tmp_path: Path) -> None:
    """The real node's 401 (RELIABILITY.md's credentials row, tested on a stub elsewhere)."""
    config = _config(tmp_path, node, lab, "writer")
    (tmp_path / "writer.password").write_text("not-the-password\n")
    proc = _run_once(config)
    errors = [ln for ln in proc.stderr.splitlines() if " ERROR " in ln]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert errors and "HTTP 401" in errors[0], proc.stderr[-2000:]
    assert "not-the-password" not in proc.stderr + proc.stdout


def test_run_by_a_writer_that_cannot_see_the_runs_index_stops_with_one_line(
        measured, node: SecuredNode, lab: LabStack, tmp_path: Path) -> None:
    proc = _run_once(_config(tmp_path, node, lab, "no_view"))
    errors = [ln for ln in proc.stderr.splitlines() if " ERROR " in ln]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert errors and "HTTP 403" in errors[0] and names.runs_index(NS) in errors[0], \
        proc.stderr[-2000:]
