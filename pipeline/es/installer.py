"""Put edgewatch's policy, templates and runs index on a cluster, changing only what differs.

Each object is compared with what is installed (templates and the policy by the content hash
setup stored in their ``_meta``; existing indices and data streams field by field) and reported as
created, updated or unchanged, so a second run is visibly a no-op. Existing indices get new fields
through ``PUT _mapping``; a field whose type changed cannot be fixed in place and is reported as a
conflict (it takes a rollover of the data stream, or a reindex of the runs index). The same holds
for the settings fixed at index creation (``index.mode``, ``ignore_malformed``, the ``_source``
mode): an index created before the templates said so (e.g. made logsdb by a 9.x cluster's
default) is reported as a conflict with the command that fixes it.
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


def template_drift(desired: dict[str, Any], installed: dict[str, Any]) -> list[str]:
    """Index settings and data stream options of a template that differ from what is installed.

    The content hash in ``_meta`` survives an edit by hand (Kibana keeps ``_meta``), so the
    settings that decide what is refused are compared by value as well, in the flat string form
    that absorbs the cluster's normalisation (``1`` → ``"1"``, ``false`` → ``"false"``)."""
    want_t, have_t = desired.get("template") or {}, installed.get("template") or {}
    want = templates.flat_settings(want_t.get("settings") or {})
    have = templates.flat_settings(have_t.get("settings") or {})
    drift = [f"{key} ({have.get(key)} → {value})" for key, value in want.items()
             if have.get(key) != value]
    want_o, have_o = want_t.get("data_stream_options"), have_t.get("data_stream_options")
    if want_o is not None and want_o != have_o:
        drift.append(f"data_stream_options ({have_o} → {want_o})")
    return drift


def install_object(client: Elasticsearch, obj: templates.Desired, dry_run: bool) -> Outcome:
    current = _installed(client, obj)
    detail = ""
    if current is None:
        action = CREATED
    else:
        drift = [] if obj.kind == "lifecycle policy" else template_drift(obj.body, current)
        if templates.installed_hash(current) == obj.hash and not drift:
            return Outcome(obj.kind, obj.name, UNCHANGED)
        action, detail = UPDATED, ", ".join(drift)
    if not dry_run:
        _put(client, obj)
    return Outcome(obj.kind, obj.name, _would(action, dry_run), detail)


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


def settings_differences(desired: dict[str, str], effective: dict[str, Any]) -> list[str]:
    """Creation-time settings an index has other than ``desired`` (flat, as the cluster answers
    ``GET <index>/_settings?flat_settings&include_defaults``); empty when in sync."""
    diffs = []
    for key, want in desired.items():
        have = effective.get(key)
        have_text = None if have is None else str(have).lower()
        if have_text != want:
            diffs.append(f"{key} ({have_text} → {want})")
    return diffs


def _effective_settings(client: Elasticsearch, index: str) -> dict[str, Any]:
    body = client.indices.get_settings(index=index, include_defaults=True,
                                       flat_settings=True).body[index]
    return {**body.get("defaults", {}), **body.get("settings", {})}


def write_index(data_stream: dict[str, Any] | None, creation_dates: dict[str, Any]) -> str | None:
    """The write index of a data stream.

    ``data_stream`` is its entry in ``GET _data_stream/<name>`` (a full cluster), whose last
    ``indices`` item is the write index. Without that API (the devstack node), the backing index
    created last is (``creation_dates``: index name → ``index.creation_date``); backing index
    names are no guide, a shrink or a restore renames them."""
    indices = (data_stream or {}).get("indices") or []
    if indices:
        return str(indices[-1]["index_name"])
    if not creation_dates:
        return None
    return max(creation_dates, key=lambda name: int(creation_dates[name] or 0))


def _data_stream_entry(client: Elasticsearch, stream: str) -> dict[str, Any] | None:
    """``GET _data_stream/<stream>``'s entry, or None where the API is absent (devstack node)."""
    resp = client.options(ignore_status=(400, 404, 405)).perform_request(
        "GET", f"/_data_stream/{stream}", headers={"accept": "application/json"})
    if resp.meta.status != 200:
        return None
    streams = [d for d in resp.body.get("data_streams", []) if d.get("name") == stream]
    return dict(streams[0]) if streams else None


def _write_index(client: Elasticsearch, stream: str, entry: dict[str, Any] | None) -> str | None:
    if entry and entry.get("indices"):
        return write_index(entry, {})
    dates = client.indices.get_settings(index=stream, name="index.creation_date",
                                        flat_settings=True).body
    return write_index(None, {name: body["settings"].get("index.creation_date")
                              for name, body in dates.items()})


def failure_store_enabled(entry: dict[str, Any] | None) -> bool:
    """Whether an existing data stream stores refused documents instead of refusing them.

    ``GET _data_stream`` reports the *effective* state (``failure_store.enabled``), which also
    covers a cluster setting ``data_streams.failure_store.enabled`` matching ``logs-*``. A data
    stream keeps the options it was created with, so a template change does not reach it."""
    return bool(entry and (entry.get("failure_store") or {}).get("enabled") is True)


def disable_failure_store(client: Elasticsearch, stream: str, dry_run: bool) -> Outcome:
    """``PUT _data_stream/<stream>/_options``: explicit ``enabled: false`` wins over the cluster
    setting; documents already in the failure store stay there."""
    if not dry_run:
        client.perform_request("PUT", f"/_data_stream/{stream}/_options",
                               body={"failure_store": {"enabled": False}},
                               headers={"accept": "application/json",
                                        "content-type": "application/json"})
    return Outcome("data stream options", stream, _would(UPDATED, dry_run),
                   "failure store enabled → disabled: with it, refused documents are stored "
                   "as failures and never dead-lettered")


def _with_settings(outcome: Outcome, setting_diffs: list[str], remedy: str) -> Outcome:
    """A mapping outcome turned into a conflict when creation-time settings differ too."""
    if not setting_diffs:
        return outcome
    parts = [outcome.detail] if outcome.detail else []
    parts.append(f"{', '.join(setting_diffs)}: fixed at index creation — {remedy}")
    return Outcome(outcome.kind, outcome.name, CONFLICT, "; ".join(parts))


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
    setting_diffs = settings_differences(templates.fixed_settings(names.RUNS_INDEX_TEMPLATE),
                                         _effective_settings(client, index))
    return _with_settings(_sync_mapping(client, "index", index, desired, dry_run),
                          setting_diffs, f"reindex {index} into a new index")


def _check_stream(client: Elasticsearch, namespace: str, caps: Capabilities,
                  dry_run: bool, missing: frozenset[str] = frozenset(),
                  kind: str = "check") -> list[Outcome]:
    """An existing data stream of ``kind`` (a ``names.KINDS`` data stream kind) brought up to
    its template's mappings; absent until its first document."""
    route = names.KINDS[kind]
    stream = route.target(namespace)
    if not client.indices.exists(index=stream):
        return [Outcome("data stream", stream, ABSENT, f"appears with the first {kind} document")]
    desired = templates.effective_mappings(route.template, missing=missing)
    entry = _data_stream_entry(client, stream)
    write = _write_index(client, stream, entry)
    setting_diffs = settings_differences(
        templates.fixed_settings(route.template),
        _effective_settings(client, write)) if write else []
    outcomes = [_with_settings(_sync_mapping(client, "data stream", stream, desired, dry_run),
                               setting_diffs, f"roll it over (POST {stream}/_rollover)")]
    if caps.failure_store and failure_store_enabled(entry):
        outcomes.append(disable_failure_store(client, stream, dry_run))
    return outcomes


def replica_count(client: Elasticsearch, configured: int | None) -> tuple[int, str]:
    """(replicas, why): ``elasticsearch.replicas`` if set, else 0 on one data node and 1 on two
    or more (one copy on another node survives losing any one node; more copies cost disk and
    indexing work on every node for little more safety)."""
    if configured is not None:
        return configured, "elasticsearch.replicas"
    data_nodes = int(client.cluster.health().body.get("number_of_data_nodes", 1))
    return (0 if data_nodes < 2 else 1), f"auto: {data_nodes} data node(s)"


def _replicas_of(client: Elasticsearch, target: str, replicas: int,
                 dry_run: bool) -> Outcome | None:
    """An existing index or data stream given ``replicas`` (a dynamic setting: applied in
    place, to every backing index); None when ``target`` does not exist yet."""
    if not client.indices.exists(index=target):
        return None
    body = client.indices.get_settings(index=target, flat_settings=True).body
    have = sorted({(s["settings"].get("index.number_of_replicas"),
                    s["settings"].get("index.auto_expand_replicas", "false"))
                   for s in body.values()})
    if have == [(str(replicas), "false")]:
        return Outcome("settings", f"{target} number_of_replicas", UNCHANGED, str(replicas))
    if not dry_run:
        client.indices.put_settings(index=target, settings={
            "index.number_of_replicas": replicas, "index.auto_expand_replicas": "false"})
    was = ", ".join(n if auto == "false" else f"auto {auto}" for n, auto in have)
    return Outcome("settings", f"{target} number_of_replicas", _would(UPDATED, dry_run),
                   f"{was} → {replicas}")


def install(client: Elasticsearch, namespace: str, caps: Capabilities,
            dry_run: bool = False, replicas: int | None = None) -> list[Outcome]:
    """Install or update everything, in dependency order; one outcome per object.

    ``replicas``: ``elasticsearch.replicas`` (None: from the data node count)."""
    count, why = replica_count(client, replicas)
    outcomes: list[Outcome] = [Outcome("replicas", "check and runs", f"{count}", why)]
    if not caps.ilm:
        outcomes.append(Outcome("lifecycle policy", names.LIFECYCLE_POLICY, SKIPPED,
                                f"{caps.ilm_note or 'no ILM on this cluster'}; check indices "
                                "are kept until deleted by hand"))
    if not caps.failure_store:
        outcomes.append(Outcome("data stream options", names.CHECK_INDEX_TEMPLATE, SKIPPED,
                                f"{caps.failure_store_note}; the template is installed without "
                                "them"))
    missing = missing_field_types(client)
    for field_type in sorted(missing):
        outcomes.append(Outcome("field type", field_type, SKIPPED,
                                f"not on this cluster; mapped as the nearest type, "
                                f"{templates.OPTIONAL_TYPES[field_type]}"))
    for obj in templates.desired_objects(caps.ilm, failure_store=caps.failure_store,
                                         missing=missing, replicas=count):
        outcomes.append(install_object(client, obj, dry_run))
    outcomes.append(_runs_index(client, namespace, dry_run, missing))
    for kind in names.DATA_STREAM_KINDS:
        outcomes.extend(_check_stream(client, namespace, caps, dry_run, missing, kind))
    targets = [names.runs_index(namespace), *(names.KINDS[k].target(namespace)
                                              for k in names.DATA_STREAM_KINDS)]
    outcomes.extend(o for t in targets if (o := _replicas_of(client, t, count, dry_run)))
    return outcomes
