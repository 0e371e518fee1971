"""The JSON in ``mappings/`` turned into request bodies for the cluster at hand.

The files are what a person reads and diffs; this module only adapts what depends on the cluster
(adds the lifecycle policy name where ILM exists; drops the data stream options where templates
do not take them) and a content hash in ``_meta`` so that setup can tell "unchanged" from
"changed" without second-guessing how Elasticsearch normalises settings.
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipeline.es import names
from pipeline.shipped import shipped_path

HASH_KEY = "edgewatch_hash"

COMPONENT_TEMPLATES = (
    names.BASE_MAPPINGS,
    names.CHECK_MAPPINGS,
    names.CHECK_SETTINGS,
    names.RUN_MAPPINGS,
    names.RUN_SETTINGS,
    names.EVENT_MAPPINGS,
    names.AFTERLIFE_MAPPINGS,
)
INDEX_TEMPLATES = (names.CHECK_INDEX_TEMPLATE, names.RUNS_INDEX_TEMPLATE,
                   names.EVENT_INDEX_TEMPLATE, names.AFTERLIFE_INDEX_TEMPLATE)

# ECS field types that live in optional modules (constant-keyword, mapper-extras), with the
# nearest type every node has. Every Elasticsearch distribution ships them; a node assembled
# without them (the devstack node) refuses the template, so setup probes and maps the nearest.
OPTIONAL_TYPES = {"constant_keyword": "keyword", "match_only_text": "text"}


def mappings_dir() -> Path:
    """``EDGEWATCH_MAPPINGS_DIR`` if set (templates edited locally), else the shipped ones: the
    copy inside an installed wheel, or ``mappings/`` of the checkout (``pipeline.shipped``)."""
    explicit = os.environ.get("EDGEWATCH_MAPPINGS_DIR")
    if explicit:
        return Path(explicit)
    return shipped_path("mappings")


def load(relative: str, base: Path | None = None) -> dict[str, Any]:
    path = (base or mappings_dir()) / relative
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise FileNotFoundError(f"mapping file {path} is missing: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"mapping file {path} is not valid JSON: {exc}") from exc


def content_hash(body: dict[str, Any]) -> str:
    """Hash of a body's canonical JSON, ignoring any hash already stored in it."""
    stripped = copy.deepcopy(body)
    for meta in (stripped.get("_meta"), stripped.get("policy", {}).get("_meta")):
        if isinstance(meta, dict):
            meta.pop(HASH_KEY, None)
    canonical = orjson.dumps(stripped, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def stamped(body: dict[str, Any]) -> dict[str, Any]:
    """The body with its content hash in ``_meta`` (``policy._meta`` for a lifecycle policy)."""
    out = copy.deepcopy(body)
    meta = out.get("policy", out).setdefault("_meta", {})
    meta[HASH_KEY] = content_hash(out)
    return out


def installed_hash(body: dict[str, Any] | None) -> str | None:
    if not body:
        return None
    meta = body.get("_meta") or body.get("policy", {}).get("_meta") or {}
    value = meta.get(HASH_KEY)
    return str(value) if value else None


@dataclass(frozen=True)
class Desired:
    kind: str  # "lifecycle policy" | "component template" | "index template"
    name: str
    body: dict[str, Any]

    @property
    def hash(self) -> str:
        return content_hash(self.body)


def with_nearest_types(properties: dict[str, Any], missing: frozenset[str]
                       ) -> dict[str, Any]:
    """``properties`` with each field of a ``missing`` type mapped as its nearest type."""
    out: dict[str, Any] = {}
    for key, spec in properties.items():
        spec = dict(spec)
        if "properties" in spec:
            spec["properties"] = with_nearest_types(spec["properties"], missing)
        if spec.get("type") in missing:
            spec = {"type": OPTIONAL_TYPES[spec["type"]],
                    **({"ignore_above": 1024} if spec["type"] == "constant_keyword" else {})}
        out[key] = spec
    return out


REPLICATED = (names.CHECK_SETTINGS, names.RUN_SETTINGS)


def with_replicas(body: dict[str, Any], replicas: int) -> dict[str, Any]:
    """A settings component with a fixed ``number_of_replicas`` in place of the files'
    ``auto_expand_replicas: 0-1``: setup decided from the data nodes, or the config says."""
    index = body["template"]["settings"].setdefault("index", {})
    index.pop("auto_expand_replicas", None)
    index["number_of_replicas"] = replicas
    return body


def component_template(name: str, ilm: bool, base: Path | None = None,
                       missing: frozenset[str] = frozenset(),
                       replicas: int | None = None) -> dict[str, Any]:
    body = load(f"component_templates/{name}.json", base)
    if name in REPLICATED and replicas is not None:
        with_replicas(body, replicas)
    mappings = body.get("template", {}).get("mappings")
    if missing and mappings and "properties" in mappings:
        mappings["properties"] = with_nearest_types(mappings["properties"], missing)
    if name == names.CHECK_SETTINGS and ilm:
        # Only here: a cluster without ILM rejects index.lifecycle.* as an unknown setting.
        index = body["template"]["settings"].setdefault("index", {})
        index["lifecycle"] = {"name": names.LIFECYCLE_POLICY}
    return body


def index_template(name: str, failure_store: bool, base: Path | None = None) -> dict[str, Any]:
    body = load(f"index_templates/{name}.json", base)
    if not failure_store:
        # A release without the option (9.0) rejects the whole template for it; it has no
        # failure store either, so nothing can swallow a refusal there.
        body.get("template", {}).pop("data_stream_options", None)
        if body.get("template") == {}:
            del body["template"]
    return body


def desired_objects(ilm: bool, base: Path | None = None, *, failure_store: bool = True,
                    missing: frozenset[str] = frozenset(),
                    replicas: int | None = None) -> list[Desired]:
    """Everything setup installs, in dependency order (policy, components, index templates).

    ``failure_store``: the cluster's index templates take ``data_stream_options`` (9.1 on);
    ``missing``: field types the cluster lacks, mapped as their nearest type; ``replicas``:
    the replica count of the check and runs settings (None: the files' ``0-1`` auto-expand)."""
    out: list[Desired] = []
    if ilm:
        out.append(Desired("lifecycle policy", names.LIFECYCLE_POLICY,
                           stamped(load(f"lifecycle/{names.LIFECYCLE_POLICY}.json", base))))
    for name in COMPONENT_TEMPLATES:
        out.append(Desired("component template", name,
                           stamped(component_template(name, ilm, base, missing, replicas))))
    for name in INDEX_TEMPLATES:
        out.append(Desired("index template", name,
                           stamped(index_template(name, failure_store, base))))
    return out


def merge_properties(into: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge mapping ``properties`` the way composable templates do (later wins)."""
    for key, value in more.items():
        if (key in into and isinstance(into[key], dict) and isinstance(value, dict)
                and "properties" in into[key] and "properties" in value):
            merged = {**into[key], **{k: v for k, v in value.items() if k != "properties"}}
            merged["properties"] = merge_properties(dict(into[key]["properties"]),
                                                    value["properties"])
            into[key] = merged
        else:
            into[key] = copy.deepcopy(value)
    return into


def effective_mappings(index_template: str, base: Path | None = None,
                       missing: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The mappings an index created from ``index_template`` gets (components merged in order)."""
    template = load(f"index_templates/{index_template}.json", base)
    missing_ok = set(template.get("ignore_missing_component_templates", []))
    mappings: dict[str, Any] = {"properties": {}}
    for name in template["composed_of"]:
        path = (base or mappings_dir()) / "component_templates" / f"{name}.json"
        if name in missing_ok and not path.exists():
            continue
        part = component_template(name, False, base, missing)["template"].get("mappings", {})
        for key, value in part.items():
            if key == "properties":
                merge_properties(mappings["properties"], value)
            elif key != "_meta":
                mappings[key] = copy.deepcopy(value)
    return mappings


# Settings fixed when an index is created: a template change reaches only indices created after
# it, so setup compares them on the existing runs index and the data stream's write index.
FIXED_SETTINGS = ("index.mode", "index.mapping.ignore_malformed", "index.mapping.source.mode")


def flat_settings(settings: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as the flat, lower-case strings the cluster answers with:
    ``{"index": {"mapping": {"ignore_malformed": False}}}`` →
    ``{"index.mapping.ignore_malformed": "false"}``."""
    out: dict[str, str] = {}
    for key, value in settings.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_settings(value, f"{path}."))
        else:
            out[path] = (str(value).lower() if isinstance(value, bool | str)
                         else orjson.dumps(value).decode())
    return out


def fixed_settings(index_template: str, base: Path | None = None) -> dict[str, str]:
    """The creation-time settings (``FIXED_SETTINGS``) an index from ``index_template`` gets."""
    template = load(f"index_templates/{index_template}.json", base)
    missing_ok = set(template.get("ignore_missing_component_templates", []))
    merged: dict[str, str] = {}
    for name in template["composed_of"]:
        path = (base or mappings_dir()) / "component_templates" / f"{name}.json"
        if name in missing_ok and not path.exists():
            continue
        part = load(f"component_templates/{name}.json", base)["template"].get("settings", {})
        merged.update(flat_settings(part))
    merged.update(flat_settings(template.get("template", {}).get("settings", {})))
    return {key: merged[key] for key in FIXED_SETTINGS if key in merged}


def leaf_fields(properties: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """``{"resolve.rtt.us": {"type": "long"}, ...}``: every concrete field of a mapping."""
    out: dict[str, dict[str, Any]] = {}
    for key, spec in properties.items():
        path = f"{prefix}{key}"
        if "properties" in spec and "type" not in spec:
            out.update(leaf_fields(spec["properties"], f"{path}."))
        else:
            out[path] = {k: v for k, v in spec.items() if k != "fields"}
    return out
