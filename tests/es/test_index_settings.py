"""Explicit index settings: the check data stream and the runs index behave alike on every cluster.

A fresh 9.x cluster makes any ``logs-*-*`` data stream whose template does not set ``index.mode``
logsdb (``ignore_malformed: true``, so a bad value is stored in ``_ignored`` instead of refused),
and a failure store answers a refused document with success. The templates therefore say
``standard``, ``ignore_malformed: false``, stored ``_source`` and no failure store; these tests read
back what the real node applied and check that a malformed value is refused. The devstack node
has neither logsdb by default nor a ``_data_stream`` API: the branches that only a full cluster
takes are tested through their decision functions and, for one request, a loopback stub.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ApiError, Elasticsearch

from pipeline.commands.setup import setup
from pipeline.config import ElasticsearchSettings
from pipeline.es import installer, names, templates
from pipeline.es.cluster import _failure_store_from, detect

from .stub import stub_server
from .test_setup import run_cli, write_config

EXPECTED_FIXED = {"index.mode": "standard", "index.mapping.ignore_malformed": "false",
                  "index.mapping.source.mode": "stored"}
REFUSED_TYPES = {"document_parsing_exception", "mapper_parsing_exception"}


def _field_of_type(index_template: str, field_type: str) -> str:
    """A mapped field of that type, read from the templates (so a renamed field still works)."""
    fields = templates.leaf_fields(templates.effective_mappings(index_template)["properties"])
    return next(path for path, spec in sorted(fields.items()) if spec.get("type") == field_type)


def _nested(path: str, value: object) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    *parents, leaf = path.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return doc


def _effective(es: Elasticsearch, index: str) -> dict[str, Any]:
    body = es.indices.get_settings(index=index, include_defaults=True, flat_settings=True).body
    return {**body[index].get("defaults", {}), **body[index].get("settings", {})}


def _backing_indices(es: Elasticsearch, stream: str) -> list[str]:
    # GET: the 9.x client sends resolve_index as POST, which 9.2 refuses.
    resp = es.perform_request("GET", f"/_resolve/index/{stream}",
                              headers={"accept": "application/json"})
    return list(resp.body["data_streams"][0]["backing_indices"])


# --- what the templates say ------------------------------------------------------------------

def test_both_templates_state_mode_ignore_malformed_and_source_explicitly() -> None:
    for template in (names.CHECK_INDEX_TEMPLATE, names.RUNS_INDEX_TEMPLATE):
        assert templates.fixed_settings(template) == EXPECTED_FIXED, template


def test_failure_store_is_off_in_the_check_template_itself() -> None:
    objects = {o.name: o for o in templates.desired_objects(ilm=False, failure_store=True)}
    check = objects[names.CHECK_INDEX_TEMPLATE].body
    # In the index template's own `template`, which wins over every component (@custom too).
    assert check["template"]["data_stream_options"] == {"failure_store": {"enabled": False}}
    # A plain index cannot carry data stream options (the cluster refuses the template).
    assert "template" not in objects[names.RUNS_INDEX_TEMPLATE].body


def test_data_stream_options_are_left_out_where_templates_do_not_take_them() -> None:
    with_options = {o.name: o for o in templates.desired_objects(ilm=True, failure_store=True)}
    without = {o.name: o for o in templates.desired_objects(ilm=True, failure_store=False)}
    assert "template" not in without[names.CHECK_INDEX_TEMPLATE].body
    assert with_options[names.CHECK_INDEX_TEMPLATE].hash != without[names.CHECK_INDEX_TEMPLATE].hash
    # Only the data stream options depend on it; the index settings are the same everywhere.
    settings = names.CHECK_SETTINGS
    assert with_options[settings].body == without[settings].body


def test_failure_store_capability_decision() -> None:
    assert _failure_store_from(200, {"supported": True}) == (True, "")
    supported, note = _failure_store_from(200, {"supported": False})
    assert not supported and "no data stream options" in note
    # A cluster without the _capabilities answer we expect: never assume the option exists.
    supported, note = _failure_store_from(
        400, {"error": "no handler found for uri [/_capabilities] and method [GET]"})
    assert not supported and "HTTP 400" in note
    assert _failure_store_from(200, {"_nodes": {"total": 1}})[0] is False


def test_settings_differences_name_each_setting_with_both_values() -> None:
    effective = {"index.mode": "logsdb", "index.mapping.ignore_malformed": "true",
                 "index.mapping.source.mode": "SYNTHETIC", "index.number_of_shards": "1"}
    assert installer.settings_differences(EXPECTED_FIXED, effective) == [
        "index.mode (logsdb → standard)", "index.mapping.ignore_malformed (true → false)",
        "index.mapping.source.mode (synthetic → stored)"]
    in_sync = {**effective, "index.mode": "standard", "index.mapping.ignore_malformed": "false",
               "index.mapping.source.mode": "STORED"}
    assert installer.settings_differences(EXPECTED_FIXED, in_sync) == []


def test_write_index_from_get_data_stream_or_from_creation_dates() -> None:
    # GET _data_stream (full cluster): the last item of `indices` is the write index, whatever
    # the names say (a restored or shrunk backing index sorts anywhere).
    entry = {"name": "logs-edgewatch.check-x",
             "indices": [{"index_name": "restored-.ds-logs-edgewatch.check-x-2026.01.01-000009"},
                         {"index_name": ".ds-logs-edgewatch.check-x-2026.02.01-000002"}]}
    assert installer.write_index(entry, {}) == ".ds-logs-edgewatch.check-x-2026.02.01-000002"
    # Without that API: the backing index created last.
    dates = {".ds-a-000010": "1700000000000", ".ds-a-000009": "1800000000000"}
    assert installer.write_index(None, dates) == ".ds-a-000009"
    assert installer.write_index(None, {}) is None


def test_failure_store_state_read_from_get_data_stream() -> None:
    assert installer.failure_store_enabled({"failure_store": {"enabled": True}})
    assert not installer.failure_store_enabled({"failure_store": {"enabled": False}})
    assert not installer.failure_store_enabled({"name": "x"})  # 9.0: no failure store at all
    assert not installer.failure_store_enabled(None)  # no _data_stream API (devstack node)


def test_failure_store_of_an_existing_stream_is_turned_off() -> None:
    # Loopback stub: the devstack node has no _data_stream API, so PUT _data_stream/…/_options
    # (what a full cluster answers) cannot be sent to it.
    seen: list[tuple[str, str, object]] = []

    def respond(method: str, path: str, body: bytes) -> tuple[int, object]:
        seen.append((method, path, json.loads(body) if body else None))
        return 200, {"acknowledged": True}

    with stub_server(respond) as url:
        client = Elasticsearch(url, request_timeout=5)
        try:
            dry = installer.disable_failure_store(client, "logs-edgewatch.check-x", dry_run=True)
            assert dry.action == "would be updated" and seen == []
            done = installer.disable_failure_store(client, "logs-edgewatch.check-x",
                                                   dry_run=False)
        finally:
            client.close()
    assert done.action == "updated" and "dead-lettered" in done.detail
    assert seen == [("PUT", "/_data_stream/logs-edgewatch.check-x/_options",
                     {"failure_store": {"enabled": False}})]


# --- what the real node applies --------------------------------------------------------------

@pytest.mark.integration
def test_node_takes_data_stream_options_in_templates(es: Elasticsearch, es_url: str) -> None:
    caps = detect(es, es_url)
    assert caps.failure_store, caps.failure_store_note


@pytest.mark.integration
def test_setup_applies_the_settings_and_malformed_values_are_refused(
    es: Elasticsearch, es_url: str, es_namespace: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "edgewatch.toml", es_url, es_namespace)
    stream = names.check_data_stream(es_namespace)
    runs = names.runs_index(es_namespace)
    first = run_cli("--config", str(config))
    assert first.returncode == 0, first.stderr

    simulated = es.indices.simulate_index_template(name=stream).body["template"]
    index_settings = templates.flat_settings(simulated["settings"])
    assert index_settings["index.mode"] == "standard"
    assert index_settings["index.mapping.ignore_malformed"] == "false"
    assert simulated["data_stream_options"] == {"failure_store": {"enabled": False}}
    installed = es.indices.get_index_template(name=names.CHECK_INDEX_TEMPLATE)
    body = installed["index_templates"][0]["index_template"]
    assert body["template"]["data_stream_options"]["failure_store"]["enabled"] is False

    long_field = _field_of_type(names.CHECK_INDEX_TEMPLATE, "long")
    ip_field = _field_of_type(names.CHECK_INDEX_TEMPLATE, "ip")
    good = {"@timestamp": "2026-01-01T00:00:00Z"}
    bad_long = {**good, **_nested(long_field, "not-a-number")}
    bad_ip = {**good, **_nested(ip_field, "not-an-ip")}
    resp = es.options(ignore_status=400).bulk(operations=[
        {"create": {"_index": stream, "_id": "good"}}, good,
        {"create": {"_index": stream, "_id": "bad-long"}}, bad_long,
        {"create": {"_index": stream, "_id": "bad-ip"}}, bad_ip,
    ])
    items = {item["create"]["_id"]: item["create"] for item in resp["items"]}
    assert items["good"]["status"] == 201
    for doc_id in ("bad-long", "bad-ip"):
        assert items[doc_id]["status"] == 400, items[doc_id]
        assert items[doc_id]["error"]["type"] in REFUSED_TYPES
    with pytest.raises(ApiError) as refused:
        es.index(index=stream, id="bad-single", op_type="create", document=bad_long)
    assert refused.value.status_code == 400

    es.indices.refresh(index=stream)
    assert es.count(index=stream)["count"] == 1
    assert es.count(index=stream, query={"exists": {"field": "_ignored"}})["count"] == 0

    backing = _backing_indices(es, stream)
    assert len(backing) == 1
    for index in (backing[0], runs):
        effective = _effective(es, index)
        assert {k: str(effective[k]).lower() for k in EXPECTED_FIXED} == EXPECTED_FIXED, index
        assert not effective.get("index.sort.field"), index  # logsdb would sort on host.name
    # The space logsdb would save comes mostly from its codec: the check stream takes it too.
    assert _effective(es, backing[0])["index.codec"] == "best_compression"
    # logsdb injects host.name into the mapping; standard keeps exactly the declared fields.
    mapped = es.indices.get_mapping(index=backing[0]).body[backing[0]]["mappings"]
    declared = templates.leaf_fields(
        templates.effective_mappings(names.CHECK_INDEX_TEMPLATE)["properties"])
    assert set(templates.leaf_fields(mapped["properties"])) == set(declared)

    second = run_cli("--config", str(config))
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().splitlines()[-1] == "no change"
    assert f"data stream {stream}" in second.stdout
    assert "created" not in second.stdout and "updated" not in second.stdout
    assert "conflict" not in second.stdout


@pytest.mark.integration
def test_install_without_the_capability_leaves_the_options_out_and_says_so(
    es: Elasticsearch, es_url: str, installed: ElasticsearchSettings
) -> None:
    """The branch of a 9.0 cluster, taken on the real node by handing install() capabilities
    without the option (the node itself lists it)."""
    caps = replace(detect(es, es_url), failure_store=False,
                   failure_store_note="no data stream options here")
    try:
        outcomes = installer.install(es, installed.namespace, caps)
        body = es.indices.get_index_template(name=names.CHECK_INDEX_TEMPLATE)
        stored = body["index_templates"][0]["index_template"]
    finally:
        setup(installed, out=io.StringIO())  # the templates as every other test expects them
    skipped = [o for o in outcomes if o.kind == "data stream options"]
    assert [o.action for o in skipped] == ["skipped"]
    assert "no data stream options here" in skipped[0].detail
    assert next(o for o in outcomes if o.kind == "index template"
                and o.name == names.CHECK_INDEX_TEMPLATE).action == "updated"
    assert "data_stream_options" not in stored.get("template", {})


def _tamper(body: dict[str, Any]) -> dict[str, Any]:
    """An installed template as a hand edit would leave it: ``_meta`` (and its hash) kept."""
    return {k: v for k, v in body.items() if k not in ("created_date_millis",
                                                      "modified_date_millis")}


@pytest.mark.integration
def test_setup_repairs_settings_edited_by_hand_with_the_hash_kept(
    es: Elasticsearch, installed: ElasticsearchSettings
) -> None:
    comp = es.cluster.get_component_template(name=names.CHECK_SETTINGS)
    settings = _tamper(comp["component_templates"][0]["component_template"])
    settings["template"]["settings"]["index"]["mode"] = "logsdb"
    settings["template"]["settings"]["index"]["mapping"]["ignore_malformed"] = "true"
    es.cluster.put_component_template(name=names.CHECK_SETTINGS, **settings)
    tmpl = es.indices.get_index_template(name=names.CHECK_INDEX_TEMPLATE)
    index_template = _tamper(tmpl["index_templates"][0]["index_template"])
    index_template["template"]["data_stream_options"]["failure_store"]["enabled"] = True
    es.indices.put_index_template(name=names.CHECK_INDEX_TEMPLATE, **index_template)

    outcomes = {o.name: o for o in setup(installed, out=io.StringIO())}
    assert outcomes[names.CHECK_SETTINGS].action == "updated"
    assert "index.mode (logsdb → standard)" in outcomes[names.CHECK_SETTINGS].detail
    assert "index.mapping.ignore_malformed (true → false)" in outcomes[names.CHECK_SETTINGS].detail
    assert outcomes[names.CHECK_INDEX_TEMPLATE].action == "updated"
    assert "data_stream_options" in outcomes[names.CHECK_INDEX_TEMPLATE].detail
    assert outcomes[names.RUN_SETTINGS].action == "unchanged"
    assert not any(o.changed for o in setup(installed, out=io.StringIO()))
    simulated = es.indices.simulate_index_template(
        name=names.check_data_stream(installed.namespace)).body["template"]
    assert templates.flat_settings(simulated["settings"])["index.mode"] == "standard"
    assert simulated["data_stream_options"] == {"failure_store": {"enabled": False}}


def test_template_drift_ignores_the_cluster_normalisation() -> None:
    desired = {"template": {"settings": {"index": {"number_of_shards": 1, "mode": "standard",
                                                   "mapping": {"ignore_malformed": False}}},
                            "data_stream_options": {"failure_store": {"enabled": False}}}}
    as_returned = {"template": {"settings": {"index": {"number_of_shards": "1",
                                                       "mode": "standard",
                                                       "mapping": {"ignore_malformed": "false"}}},
                                "data_stream_options": {"failure_store": {"enabled": False}}}}
    assert installer.template_drift(desired, as_returned) == []
    flat = {"template": {"settings": {"index.number_of_shards": "1", "index.mode": "standard",
                                      "index.mapping.ignore_malformed": "false"},
                         "data_stream_options": {"failure_store": {"enabled": False}}}}
    assert installer.template_drift(desired, flat) == []
    assert installer.template_drift(desired, {"template": {}}) == [
        "index.number_of_shards (None → 1)", "index.mode (None → standard)",
        "index.mapping.ignore_malformed (None → false)",
        "data_stream_options (None → {'failure_store': {'enabled': False}})"]


@pytest.mark.integration
def test_custom_component_cannot_turn_the_failure_store_back_on(
    es: Elasticsearch, installed: ElasticsearchSettings, es_namespace: str
) -> None:
    custom = f"{names.CHECK_INDEX_TEMPLATE}@custom"
    es.cluster.put_component_template(
        name=custom, template={"data_stream_options": {"failure_store": {"enabled": True}}})
    try:
        simulated = es.indices.simulate_index_template(
            name=names.check_data_stream(es_namespace)).body["template"]
    finally:
        es.cluster.delete_component_template(name=custom)
    assert simulated["data_stream_options"] == {"failure_store": {"enabled": False}}


@pytest.mark.integration
def test_a_logsdb_write_index_is_a_conflict_until_rolled_over(
    es: Elasticsearch, installed: ElasticsearchSettings, es_namespace: str
) -> None:
    """What an older edgewatch left on a 9.x cluster: the stream was made logsdb. The devstack
    node has no logsdb default, but it takes an explicit index.mode: logsdb, so a template of
    higher priority creates the stream as the cluster default would have."""
    stream = names.check_data_stream(es_namespace)
    old = f"{es_namespace}-as-logsdb"
    es.indices.put_index_template(
        name=old, index_patterns=[stream], data_stream={}, priority=900,
        composed_of=[names.BASE_MAPPINGS, names.CHECK_MAPPINGS, names.CHECK_SETTINGS],
        template={"settings": {"index.mode": "logsdb", "index.mapping.ignore_malformed": True,
                               "index.mapping.source.mode": "synthetic"}})
    long_field = _field_of_type(names.CHECK_INDEX_TEMPLATE, "long")
    bad = {"@timestamp": "2026-01-01T00:00:00Z", **_nested(long_field, "not-a-number")}
    try:
        es.index(index=stream, id="swallowed", op_type="create", document=bad)
    finally:
        es.indices.delete_index_template(name=old)
    es.indices.refresh(index=stream)
    # The failure this issue is about: accepted, the value silently moved to _ignored.
    assert es.count(index=stream, query={"exists": {"field": "_ignored"}})["count"] == 1

    outcomes = {o.name: o for o in setup(installed, out=io.StringIO())}
    conflict = outcomes[stream]
    assert conflict.action == "conflict"
    for part in ("index.mode (logsdb → standard)",
                 "index.mapping.ignore_malformed (true → false)",
                 "index.mapping.source.mode (synthetic → stored)", f"POST {stream}/_rollover"):
        assert part in conflict.detail
    assert not any(o.changed for o in outcomes.values())

    es.indices.rollover(alias=stream)
    again = {o.name: o for o in setup(installed, out=io.StringIO())}
    assert again[stream].action == "unchanged"
    with pytest.raises(ApiError) as refused:
        es.index(index=stream, id="refused", op_type="create", document=bad)
    assert refused.value.status_code == 400
    assert refused.value.body["error"]["type"] in REFUSED_TYPES
