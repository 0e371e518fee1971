"""mappings/ declares every field of docs/DOCUMENTS.md with its type, and the cluster applies it."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from pipeline.commands.setup import setup
from pipeline.es import names, templates
from pipeline.es.installer import mapping_differences, missing_field_types

from .docgen import check_records

DOCUMENTS_MD = Path(__file__).resolve().parents[2] / "docs" / "DOCUMENTS.md"


def documented_fields() -> dict[str, dict[str, str]]:
    """{"check": {field: type}, "run": {...}} read from the tables of docs/DOCUMENTS.md."""
    sections: dict[str, dict[str, str]] = {"check": {}, "run": {}, "event": {}, "afterlife": {}}
    current = None
    in_fields = False  # inside a `| field | type | meaning |` table, not another table
    for line in DOCUMENTS_MD.read_text().splitlines():
        if line.startswith("| field | type"):
            in_fields = True
        elif not line.startswith("|"):
            in_fields = False
        if line.startswith("## Check document"):
            current = "check"
        elif line.startswith("## Run summary"):
            current = "run"
        elif line.startswith("## Event document"):
            current = "event"
        elif line.startswith("## Afterlife document"):
            current = "afterlife"
        elif line.startswith(("## ", "### ")):
            current = None
        if current is None or not in_fields or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        fields = re.findall(r"`([^`]+)`", cells[0])
        if cells[1] == "as above":
            types = [sections["check"][f] for f in fields]
        else:
            types = [t.strip() for t in cells[1].split("/")]
        if len(types) == 1:
            types = types * len(fields)
        assert len(types) == len(fields), f"cannot pair fields and types in: {line}"
        sections[current].update(zip(fields, types, strict=True))
    return sections


def test_every_documented_field_is_mapped_with_its_type() -> None:
    documented = documented_fields()
    assert len(documented["check"]) > 50 and len(documented["run"]) > 20
    assert len(documented["event"]) > 20
    assert len(documented["afterlife"]) >= 10
    for kind, template in (("check", names.CHECK_INDEX_TEMPLATE),
                           ("run", names.RUNS_INDEX_TEMPLATE),
                           ("event", names.EVENT_INDEX_TEMPLATE),
                           ("afterlife", names.AFTERLIFE_INDEX_TEMPLATE)):
        mapping = templates.effective_mappings(template)
        assert mapping["dynamic"] == "strict"
        mapped = templates.leaf_fields(mapping["properties"])
        wrong = {f: (t, mapped.get(f, {}).get("type")) for f, t in documented[kind].items()
                 if mapped.get(f, {}).get("type") != t}
        assert wrong == {}, f"{kind}: documented type vs mapped type"


def test_generated_documents_use_only_mapped_fields() -> None:
    mapped = templates.leaf_fields(
        templates.effective_mappings(names.CHECK_INDEX_TEMPLATE)["properties"])
    used = {key for record in check_records(300) for key, value in record.doc.items()
            if not (isinstance(value, list) and value and isinstance(value[0], dict))}
    used |= {f"{key}.{sub}" for record in check_records(300) for key, value in record.doc.items()
             if isinstance(value, list) and value and isinstance(value[0], dict)
             for item in value for sub in item}
    assert used - set(mapped) == set()


def test_lifecycle_is_attached_only_where_ilm_exists() -> None:
    with_ilm = {o.name: o for o in templates.desired_objects(ilm=True)}
    without = {o.name: o for o in templates.desired_objects(ilm=False)}
    assert names.LIFECYCLE_POLICY in with_ilm and names.LIFECYCLE_POLICY not in without
    settings_ilm = with_ilm[names.CHECK_SETTINGS].body["template"]["settings"]["index"]
    settings_plain = without[names.CHECK_SETTINGS].body["template"]["settings"]["index"]
    assert settings_ilm["lifecycle"] == {"name": names.LIFECYCLE_POLICY}
    assert "lifecycle" not in settings_plain
    assert with_ilm[names.CHECK_SETTINGS].hash != without[names.CHECK_SETTINGS].hash


@pytest.mark.integration
def test_check_data_stream_gets_the_explicit_mapping(
    es: Elasticsearch, installed, es_namespace: str
) -> None:
    template = es.indices.get_index_template(name=names.CHECK_INDEX_TEMPLATE)
    body = template["index_templates"][0]["index_template"]
    assert body["priority"] == 500 and "data_stream" in body
    assert body["index_patterns"] == ["logs-edgewatch.check-*"]

    stream = names.check_data_stream(es_namespace)
    record = check_records(2)[1]
    es.bulk(operations=[{"create": {"_index": stream, "_id": record.id}}, record.doc],
            refresh=True)
    resolved = es.perform_request("GET", f"/_resolve/index/{stream}",
                                  headers={"accept": "application/json"}).body
    assert [d["name"] for d in resolved["data_streams"]] == [stream]
    mappings = es.indices.get_mapping(index=stream)
    assert len(mappings) == 1
    (backing, body), = mappings.items()
    assert backing.startswith(f".ds-{stream}-")
    # the devstack node lacks constant_keyword and match_only_text: setup mapped the nearest
    desired = templates.effective_mappings(names.CHECK_INDEX_TEMPLATE,
                                           missing=missing_field_types(es))
    assert mapping_differences(desired, body["mappings"]) == []
    assert body["mappings"]["properties"]["destination"]["properties"]["ip"]["type"] == "ip"
    settings = es.indices.get_settings(index=backing)[backing]["settings"]["index"]
    # one data node: setup gave no replica (auto), in place of the files' 0-1 auto-expand
    assert settings["number_of_shards"] == "1" and settings["number_of_replicas"] == "0"
    assert "auto_expand_replicas" not in settings
    assert "lifecycle" not in settings  # the devstack node has no ILM


@pytest.mark.integration
def test_setup_adds_a_new_field_to_existing_indices_and_reports_it(
    es: Elasticsearch, installed, es_namespace: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = names.check_data_stream(es_namespace)
    record = check_records(2)[1]
    es.bulk(operations=[{"create": {"_index": stream, "_id": record.id}}, record.doc],
            refresh=True)
    # A copy of mappings/ with one more check field, as a schema upgrade would bring.
    copy = tmp_path / "mappings"
    for path in templates.mappings_dir().rglob("*.json"):
        target = copy / path.relative_to(templates.mappings_dir())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    check = copy / "component_templates" / f"{names.CHECK_MAPPINGS}.json"
    body = json.loads(check.read_text())
    dns_fields = body["template"]["mappings"]["properties"]["edgewatch"]["properties"]["dns"]
    dns_fields["properties"]["qname_minimised"] = {"type": "boolean"}
    check.write_text(json.dumps(body))
    monkeypatch.setenv("EDGEWATCH_MAPPINGS_DIR", str(copy))
    try:
        outcomes = {(o.kind, o.name): o for o in setup(installed, out=io.StringIO())}
        assert outcomes[("component template", names.CHECK_MAPPINGS)].action == "updated"
        assert outcomes[("component template", names.BASE_MAPPINGS)].action == "unchanged"
        stream_outcome = outcomes[("data stream", stream)]
        assert stream_outcome.action == "updated"
        assert "edgewatch.dns.qname_minimised (missing)" in stream_outcome.detail
        fields = es.indices.get_field_mapping(index=stream,
                                              fields="edgewatch.dns.qname_minimised")
        assert any(v["mappings"] for v in fields.values())
    finally:
        monkeypatch.delenv("EDGEWATCH_MAPPINGS_DIR")
        restored = setup(installed, out=io.StringIO())  # put the repository's templates back
        assert {o.action for o in restored if o.kind == "component template"} <= {
            "updated", "unchanged"}
