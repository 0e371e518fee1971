"""Put edgewatch's policy, templates and runs index on a cluster, changing only what differs.

Each object is compared with what is installed (templates and the policy by the content hash
setup stored in their ``_meta``; existing indices and data streams field by field) and reported as
created, updated or unchanged, so a second run is visibly a no-op. Existing indices get new fields
through ``PUT _mapping``; a field whose type changed cannot be fixed in place and is reported as a
conflict (it takes a rollover of the data stream, or a reindex of the runs index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from pipeline.es import names, templates
from pipeline.es.cluster import Capabilities

CREATED, UPDATED, UNCHANGED, SKIPPED, ABSENT, CONFLICT = (
    "created", "updated", "unchanged", "skipped", "absent", "conflict")


@dataclass(frozen=True)
class Outcome:
    kind: str
    name: str
    action: str
    detail: str = ""

    @property
    def changed(self) -> bool:
        return self.action in (CREATED, UPDATED)


def _would(action: str, dry_run: bool) -> str:
    return f"would be {action}" if dry_run else action


def _installed(client: Elasticsearch, obj: templates.Desired) -> dict[str, Any] | None:
    try:
        if obj.kind == "lifecycle policy":
            return dict(client.ilm.get_lifecycle(name=obj.name).body)[obj.name]
        if obj.kind == "component template":
            resp = client.cluster.get_component_template(name=obj.name)
            return resp["component_templates"][0]["component_template"]
        resp = client.indices.get_index_template(name=obj.name)
        return resp["index_templates"][0]["index_template"]
    except NotFoundError:
        return None


def _put(client: Elasticsearch, obj: templates.Desired) -> None:
    if obj.kind == "lifecycle policy":
        client.ilm.put_lifecycle(name=obj.name, policy=obj.body["policy"])
    elif obj.kind == "component template":
        client.cluster.put_component_template(name=obj.name, **obj.body)
    else:
        client.indices.put_index_template(name=obj.name, **obj.body)


def install_object(client: Elasticsearch, obj: templates.Desired, dry_run: bool) -> Outcome:
    current = _installed(client, obj)
    if current is None:
        action = CREATED
    elif templates.installed_hash(current) == obj.hash:
        return Outcome(obj.kind, obj.name, UNCHANGED)
    else:
        action = UPDATED
    if not dry_run:
        _put(client, obj)
    return Outcome(obj.kind, obj.name, _would(action, dry_run))


def mapping_differences(desired: dict[str, Any], installed: dict[str, Any]) -> list[str]:
    """Fields that are missing or differ in an index's installed mapping (empty: in sync)."""
    want = templates.leaf_fields(desired.get("properties", {}))
    have = templates.leaf_fields(installed.get("properties", {}))
    diffs = [f"{path} (missing)" for path in want if path not in have]
    for path, spec in want.items():
        if path in have and any(have[path].get(k) != v for k, v in spec.items()):
            diffs.append(f"{path} ({have[path].get('type')} → {spec.get('type')})")
    if desired.get("dynamic") != installed.get("dynamic"):
        diffs.append(f"dynamic ({installed.get('dynamic')} → {desired.get('dynamic')})")
    return diffs


def _sync_mapping(client: Elasticsearch, kind: str, target: str, desired: dict[str, Any],
                  dry_run: bool) -> Outcome:
    """Bring every index behind ``target`` (an index or a data stream) up to ``desired``."""
    resp = client.indices.get_mapping(index=target)
    diffs: list[str] = []
    for body in resp.body.values():
        diffs.extend(d for d in mapping_differences(desired, body["mappings"]) if d not in diffs)
    if not diffs:
        return Outcome(kind, target, UNCHANGED)
    if dry_run:
        return Outcome(kind, target, _would(UPDATED, True), ", ".join(diffs))
    try:
        client.indices.put_mapping(index=target, dynamic=desired.get("dynamic"),
                                   properties=desired["properties"])
    except ApiError as exc:
        return Outcome(kind, target, CONFLICT,
                       f"{', '.join(diffs)}: {exc.message} — roll the data stream over or "
                       "reindex")
    return Outcome(kind, target, UPDATED, ", ".join(diffs))


def missing_field_types(client: Elasticsearch) -> frozenset[str]:
    """Which of ``templates.OPTIONAL_TYPES`` this cluster cannot map (probed, nothing written).

    ``POST _index_template/_simulate`` validates a mapping without creating anything; a node
    without the module answers 400 "The mapper type [...] does not exist".
    """
    missing = set()
    for field_type in templates.OPTIONAL_TYPES:
        try:
            client.indices.simulate_template(
                index_patterns=["edgewatch-probe-field-type-*"],
                template={"mappings": {"properties": {"probe": {"type": field_type}}}})
        except ApiError as exc:
            if exc.status_code != 400 or "does not exist" not in str(exc.body):
                raise
            missing.add(field_type)
    return frozenset(missing)


def _runs_index(client: Elasticsearch, namespace: str, dry_run: bool,
                missing: frozenset[str] = frozenset()) -> Outcome:
    index = names.runs_index(namespace)
    desired = templates.effective_mappings(names.RUNS_INDEX_TEMPLATE, missing=missing)
    if not client.indices.exists(index=index):
        if not dry_run:
            # No body: the edgewatch-runs index template supplies settings and mappings.
            client.options(ignore_status=400).indices.create(index=index)
        return Outcome("index", index, _would(CREATED, dry_run))
    return _sync_mapping(client, "index", index, desired, dry_run)


def _check_stream(client: Elasticsearch, namespace: str, dry_run: bool,
                  missing: frozenset[str] = frozenset()) -> Outcome:
    stream = names.check_data_stream(namespace)
    if not client.indices.exists(index=stream):
        return Outcome("data stream", stream, ABSENT,
                       "appears with the first check document")
    desired = templates.effective_mappings(names.CHECK_INDEX_TEMPLATE, missing=missing)
    return _sync_mapping(client, "data stream", stream, desired, dry_run)


def install(client: Elasticsearch, namespace: str, caps: Capabilities,
            dry_run: bool = False) -> list[Outcome]:
    """Install or update everything, in dependency order; one outcome per object."""
    outcomes: list[Outcome] = []
    if not caps.ilm:
        outcomes.append(Outcome("lifecycle policy", names.LIFECYCLE_POLICY, SKIPPED,
                                f"{caps.ilm_note or 'no ILM on this cluster'}; check indices "
                                "are kept until deleted by hand"))
    missing = missing_field_types(client)
    for field_type in sorted(missing):
        outcomes.append(Outcome("field type", field_type, SKIPPED,
                                f"not on this cluster; mapped as the nearest type, "
                                f"{templates.OPTIONAL_TYPES[field_type]}"))
    for obj in templates.desired_objects(caps.ilm, missing=missing):
        outcomes.append(install_object(client, obj, dry_run))
    outcomes.append(_runs_index(client, namespace, dry_run, missing))
    outcomes.append(_check_stream(client, namespace, dry_run, missing))
    return outcomes
