"""TEMPORARY — remove once mappings/ and docs/DOCUMENTS.md are on schema 2 (until then they
still spell schema 1 on this branch).

The Kibana objects and the test documents of tests/kibana already use the schema-2 names; the
field lists they are checked against (DOCUMENTS.md, the templates in mappings/) and the indices
the installer creates from those templates are renamed here with the table in
``schema_names``. Every function is a no-op on input that is already schema 2, so nothing breaks
when the renamed mappings land; then delete this module and its three uses (conftest.py's
``doc_fields``/``mapped_fields``, ``add_schema2_fields`` in test_kibana_vega_queries.py).
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch
from schema_names import RENAMES

from pipeline.es.templates import leaf_fields

KEYWORD = {"type": "keyword", "ignore_above": 1024}

# Fields schema 2 adds that the test documents carry (types as ECS 9.2.0 maps them).
ADDED: dict[str, dict[str, dict[str, Any]]] = {
    "check": {"ecs.version": KEYWORD, "event.category": KEYWORD, "event.type": KEYWORD,
              "dns.type": KEYWORD, "tls.version_protocol": KEYWORD},
    "run": {"ecs.version": KEYWORD},
}


def renamed_names(names: set[str], kind: str) -> set[str]:
    """Documented field names, with schema-1 names replaced by their schema-2 ones."""
    table = RENAMES[kind]
    return {table.get(n, n) for n in names} | set(ADDED[kind])


def renamed_fields(fields: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """Leaf fields of a mapping (``templates.leaf_fields``) under their schema-2 names."""
    table = RENAMES[kind]
    out = {table.get(name, name): spec for name, spec in fields.items()}
    for name, spec in ADDED[kind].items():
        out.setdefault(name, spec)
    return out


def nested(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"a.b": spec}`` → ``{"a": {"properties": {"b": spec}}}`` for a mapping update."""
    root: dict[str, Any] = {}
    for name, spec in fields.items():
        *parents, leaf = name.split(".")
        node = root
        for part in parents:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node[leaf] = dict(spec)
    return root


def add_schema2_fields(es: Elasticsearch, index: str, kind: str) -> None:
    """Map the schema-2 names the installed (schema-1) mapping lacks, keeping it strict.

    Only adds fields (a mapping update may add, never change), each with the type of the
    schema-1 field it replaces; an index already on schema 2 gets nothing. A data stream that
    does not exist yet is created first by one placeholder document, deleted again at once
    (the devstack node has no create-data-stream API).
    """
    if not es.indices.exists(index=index):
        placed = es.index(index=index, document={"@timestamp": "2000-01-01T00:00:00Z"},
                          op_type="create")
        es.delete(index=placed["_index"], id=placed["_id"], refresh=True)
    reply = es.indices.get_mapping(index=index).body
    have: dict[str, dict[str, Any]] = {}
    for body in reply.values():
        have.update(leaf_fields(body["mappings"].get("properties", {})))
    wanted = renamed_fields(have, kind)
    missing = {n: s for n, s in wanted.items() if n not in have}
    if missing:
        es.indices.put_mapping(index=index, properties=nested(missing))
