"""``edgewatch privileges``: what it shows, and what ``create-writer`` sends.

``create-writer`` talks to the security API (``PUT _security/role``, ``PUT _security/api_key``),
which no devstack node can answer: the native realm's ``.security`` index needs the
``analysis-common`` module the integration-test distribution lacks. So those two answers come
from the loopback stub (tests/es/stub.py), standing in for a real cluster's security API; the
very same role descriptors are enforced by a real secured node in
tests/devstack/test_secured.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.es import names, privileges

from .stub import stub_server, write_config

ROOT = Path(__file__).resolve().parents[2]


def _edgewatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    return subprocess.run([sys.executable, "-m", "pipeline", "privileges", *args],
                          capture_output=True, text=True, env={**base, **(env or {})},
                          cwd=ROOT, timeout=60)


def test_show_prints_the_role_for_the_namespace() -> None:
    proc = _edgewatch("show", "--namespace", "lab1")
    assert proc.returncode == 0, proc.stderr
    role = json.loads(proc.stdout)
    assert role == privileges.writer_role("lab1")
    targets = {n for entry in role["indices"] for n in entry["names"]}
    assert targets == {names.runs_index("lab1"),
                       *(names.KINDS[k].target("lab1") for k in names.DATA_STREAM_KINDS)}
    assert role["cluster"] == ["monitor"]  # GET / and the per-cycle GET _cluster/health
    yml = _edgewatch("show", "--role", "setup", "--format", "roles-yml", "--namespace", "lab1")
    assert yml.stdout.startswith("edgewatch_setup:\n") and '"manage_index_templates"' in yml.stdout


def test_without_removes_exactly_one_privilege() -> None:
    role = privileges.writer_role("x")
    less = privileges.without(role, "index")
    count = lambda r: sum(len(e["privileges"]) for e in r["indices"])  # noqa: E731
    assert count(less) == count(role) - 1 and less["cluster"] == role["cluster"]


def test_create_writer_sends_the_role_and_a_key_limited_to_it(tmp_path: Path) -> None:
    seen: list[tuple[str, str, dict]] = []

    def respond(method: str, path: str, body: bytes) -> tuple[int, object]:
        seen.append((method, path.split("?")[0], json.loads(body or b"{}")))
        if path.startswith("/_security/role/"):
            return 200, {"role": {"created": True}}
        if path.startswith("/_security/api_key"):
            return 200, {"id": "key-id-1", "name": "edgewatch-probe-eu",
                         "api_key": "key-secret-1", "encoded": "ZW5j"}
        return 404, {"error": {"type": "not_found", "reason": path}}

    with stub_server(respond) as url:
        config = write_config(tmp_path / "edgewatch.toml", url, namespace="lab1")
        key_file = tmp_path / "keys" / "probe-eu.key"
        proc = _edgewatch("create-writer", "--config", str(config), "--key-name",
                          "edgewatch-probe-eu", "--api-key-file", str(key_file),
                          env={"ES_USERNAME": "elastic", "ES_PASSWORD": "admin-secret"})
    assert proc.returncode == 0, proc.stderr
    role = privileges.writer_role("lab1")
    assert [(m, p) for m, p, _ in seen] == [("PUT", "/_security/role/edgewatch_writer"),
                                            ("PUT", "/_security/api_key")]
    assert seen[0][2] == role
    assert seen[1][2]["role_descriptors"] == {"edgewatch_writer": role}
    assert seen[1][2]["name"] == "edgewatch-probe-eu"
    assert key_file.read_text() == "key-id-1:key-secret-1\n"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "key-secret-1" not in proc.stdout + proc.stderr
    assert "admin-secret" not in proc.stdout + proc.stderr


def test_create_writer_without_a_key_file_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "edgewatch.toml", "http://127.0.0.1:9")
    proc = _edgewatch("create-writer", "--config", str(config))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "edgewatch privileges: --api-key-file: required for create-writer (the key is never "
        "printed)"]


def test_check_against_an_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "edgewatch.toml", "http://127.0.0.1:9")
    proc = _edgewatch("check", "--config", str(config))
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgewatch privileges: refused: cannot "
                                                   "reach Elasticsearch"), proc.stderr


def test_check_with_an_api_key_names_the_missing_privilege(tmp_path: Path) -> None:
    """API keys exist only on a cluster with a .security index, so the answer is the stub's."""
    asked: list[dict] = []

    def respond(method: str, path: str, body: bytes) -> tuple[int, object]:
        asked.append(json.loads(body or b"{}"))
        request = asked[-1]
        return 200, {"username": "elastic", "has_all_requested": False,
                     "cluster": {p: True for p in request["cluster"]},
                     "index": {n: {p: not (n.startswith("logs-edgewatch.check-")
                                           and p == "create_doc")
                                   for p in entry["privileges"]}
                               for entry in request["index"] for n in entry["names"]}}

    with stub_server(respond) as url:
        config = write_config(tmp_path / "edgewatch.toml", url, namespace="lab1")
        proc = _edgewatch("check", "--config", str(config),
                          env={"ES_API_KEY": "key-id-1:key-secret-1"})
    assert asked == [privileges.has_privileges_body(privileges.writer_role("lab1"))]
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "edgewatch privileges: the API key lacks 1 privilege(s) of the writer role: "
        "create_doc on logs-edgewatch.check-lab1"]
    assert "key-secret-1" not in proc.stdout + proc.stderr
