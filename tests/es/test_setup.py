"""`edgewatch setup` against the real node: idempotent, explicit about what it did or refused."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from devstack.node import free_port
from pipeline.commands.setup import EXIT_UNAUTHORIZED, EXIT_UNREACHABLE, EXIT_UNSUPPORTED, setup
from pipeline.config import ElasticsearchSettings, Secret
from pipeline.es import names, templates
from pipeline.es.cluster import ClusterUnauthorized, ClusterUnreachable, ClusterUnsupported

from .conftest import settings_for
from .stub import root_body, stub_server, write_config

ROOT = Path(__file__).resolve().parents[2]




def run_cli(*args: str, env: dict[str, str] | None = None,
            verbose: bool = False) -> subprocess.CompletedProcess[str]:
    flags = ["-vv"] if verbose else []
    return subprocess.run([sys.executable, "-m", "pipeline", *flags, "setup", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.integration
def test_setup_twice_second_run_reports_no_change(
    es: Elasticsearch, es_url: str, es_namespace: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "edgewatch.toml", es_url, es_namespace)
    try:
        first = run_cli("--config", str(config))
        assert first.returncode == 0, first.stderr
        runs_line = next(x for x in first.stdout.splitlines()
                         if f"index {names.runs_index(es_namespace)}" in x)
        assert runs_line.split()[-1] == "created"
        second = run_cli("--config", str(config))
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip().splitlines()[-1] == "no change"
        assert "created" not in second.stdout and "updated" not in second.stdout
        # The devstack node has no ILM: said once, as the policy's outcome, not an error.
        assert second.stdout.count("no index lifecycle management") == 1
        policy_line = next(x for x in second.stdout.splitlines() if "lifecycle policy" in x)
        assert " skipped " in policy_line
        # ECS's constant_keyword and match_only_text are not on this node: probed, the nearest
        # type installed, said once each (and a second setup still changes nothing)
        for field_type, nearest in templates.OPTIONAL_TYPES.items():
            line = next(x for x in second.stdout.splitlines() if f"field type {field_type}" in x)
            assert " skipped " in line and f"nearest type, {nearest}" in line, line
        check = es.cluster.get_component_template(name=names.CHECK_MAPPINGS)[
            "component_templates"][0]["component_template"]["template"]["mappings"]
        assert check["properties"]["data_stream"]["properties"]["type"]["type"] == "keyword"
        assert check["properties"]["error"]["properties"]["message"]["type"] == "text"
        for name in templates.INDEX_TEMPLATES:
            installed = es.indices.get_index_template(name=name)["index_templates"][0]
            assert installed["index_template"]["_meta"]["managed_by"] == "edgewatch"
    finally:
        es.options(ignore_status=404).indices.delete(index=names.runs_index(es_namespace))


@pytest.mark.integration
def test_setup_repairs_a_template_changed_behind_its_back(
    es: Elasticsearch, installed: ElasticsearchSettings
) -> None:
    body = es.cluster.get_component_template(name=names.RUN_SETTINGS)
    tampered = body["component_templates"][0]["component_template"]
    tampered["template"]["settings"]["index"]["number_of_shards"] = "3"
    tampered["_meta"][templates.HASH_KEY] = "0" * 16
    for key in ("created_date_millis", "modified_date_millis"):
        tampered.pop(key, None)
    es.cluster.put_component_template(name=names.RUN_SETTINGS, **tampered)

    outcomes = {o.name: o.action for o in setup(installed, out=io.StringIO())}
    assert outcomes[names.RUN_SETTINGS] == "updated"
    assert outcomes[names.RUN_MAPPINGS] == "unchanged"
    repaired = es.cluster.get_component_template(name=names.RUN_SETTINGS)
    settings = repaired["component_templates"][0]["component_template"]["template"]["settings"]
    assert settings["index"]["number_of_shards"] == "1"
    again = setup(installed, out=io.StringIO())
    assert not any(o.changed for o in again)


@pytest.mark.integration
def test_dry_run_changes_nothing(es: Elasticsearch, es_url: str, es_namespace: str,
                                 tmp_path: Path) -> None:
    settings = settings_for(es_url, es_namespace, tmp_path)
    outcomes = setup(settings, dry_run=True, out=io.StringIO())
    runs = next(o for o in outcomes if o.kind == "index")
    assert runs.action == "would be created"
    assert not es.indices.exists(index=names.runs_index(es_namespace))


def test_setup_refuses_an_unreachable_cluster(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ClusterUnreachable, match="cannot reach Elasticsearch at"):
        setup(settings_for(url, "x", tmp_path), out=io.StringIO())
    result = run_cli("--config", str(write_config(tmp_path / "c.toml", url, "x")))
    assert result.returncode == EXIT_UNREACHABLE
    assert "refused: cannot reach Elasticsearch" in result.stderr


# The devstack node has security off and is 9.x: the two refusals below need a stand-in server
# (tests/es/stub.py) that answers GET / as a cluster with security, or as an 8.x cluster would.

def test_setup_refuses_rejected_credentials_without_showing_them(tmp_path: Path) -> None:
    def respond(method: str, path: str, body: bytes) -> tuple[int, object]:
        return 401, {"error": {"type": "security_exception",
                               "reason": "unable to authenticate user [edgewatch]"},
                     "status": 401}

    with stub_server(respond) as url:
        settings = ElasticsearchSettings(url=url, username="edgewatch",
                                         password=Secret("hunter2-secret"))
        with pytest.raises(ClusterUnauthorized, match="401") as caught:
            setup(settings, out=io.StringIO())
        assert "hunter2-secret" not in str(caught.value)
        config = write_config(tmp_path / "c.toml", url, "x")
        env = {"PATH": "/usr/bin:/bin", "ES_USERNAME": "edgewatch",
               "ES_PASSWORD": "hunter2-secret"}
        result = run_cli("--config", str(config), env=env, verbose=True)
        assert result.returncode == EXIT_UNAUTHORIZED
        assert "rejected the credentials" in result.stderr
        assert "hunter2-secret" not in result.stderr + result.stdout


def test_setup_refuses_an_8x_cluster_and_names_its_version(tmp_path: Path) -> None:
    def respond(method: str, path: str, body: bytes) -> tuple[int, object]:
        return 200, root_body("8.17.4")

    with stub_server(respond) as url:
        with pytest.raises(ClusterUnsupported, match=r"Elasticsearch 8\.17\.4; edgewatch needs 9"):
            setup(settings_for(url, "x", tmp_path), out=io.StringIO())
        result = run_cli("--config", str(write_config(tmp_path / "c.toml", url, "x")))
        assert result.returncode == EXIT_UNSUPPORTED
        assert "8.17.4" in result.stderr
