"""No saved object spells a field name that schema 2 retired.

A panel grouping by ``resolver.name`` on schema-2 data gets no buckets and draws an empty chart;
a data view formatting ``dns.rtt.us`` formats nothing; Kibana reports neither. The names come
from the one rename table in ``schema_names``; the scan reads every string of every object,
keys included, down into the JSON held in string attributes (the Vega spec inside visState).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from schema_names import RETIRED, retired_names_in, strings_in

from pipeline.schema1 import RENAMED

HEARTBEAT_PREFIXES = ("resolve.", "http.rtt.", "tcp.rtt.", "tls.rtt.")


def test_no_saved_object_spells_a_retired_name(objects: list[dict[str, Any]]) -> None:
    found = {f"{o['type']}/{o['id']}": sorted(retired_names_in(o)) for o in objects}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_scan_reaches_every_place_a_field_is_named(objects: list[dict[str, Any]]) -> None:
    """Sanity of the scan on the shipped file: it sees fields named in a data view's formats,
    a saved search's columns, a Vega query's keys and values (two JSON levels down)."""
    seen = set().union(*(set(strings_in(o)) for o in objects))
    assert {"http.rtt.response_header.us",  # fieldFormatMap (JSON string)
            "edgewatch.resolver.name",  # columns, and field values in Vega queries
            "edgewatch.run.start",  # a range query's key, inside the spec inside visState
            } <= seen


def _vega_object(query: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    spec = {"data": {"url": {"body": {"query": query}}}}
    vis_state = {"type": "vega", "params": {"spec": json.dumps(spec, indent=2)}}
    return {"attributes": {"visState": json.dumps(vis_state), "columns": columns}}


@pytest.mark.parametrize(("query", "columns", "expected"), [
    ({"range": {"run.start": {"lte": 1}}}, [], {"run.start"}),  # a key, two JSON levels down
    ({"terms": {"field": "resolver.name"}}, [], {"resolver.name"}),
    ({}, ["destination.prefix24", "dns.rtt.us"], {"destination.prefix24", "dns.rtt.us"}),
    ({"term": {"tls.version": "TLSv1.3"}}, [], {"TLSv1"}),  # the old value
    ({"query_string": {"query": "http.rtt.total.us > 5"}}, [], {"http.rtt.total.us"}),
    # schema-2 names that contain a retired one are not it
    ({"range": {"edgewatch.run.start": {"lte": 1}}}, ["edgewatch.destination.prefix24"], set()),
    ({"term": {"tls.version": "1.3"}}, ["edgewatch.resolver.name", "resolve.rtt.us"], set()),
])
def test_the_scan_finds_retired_names_wherever_they_are(
        query: dict[str, Any], columns: list[str], expected: set[str]) -> None:
    assert retired_names_in(_vega_object(query, columns)) == expected


def test_the_rename_table_moves_fields_under_edgewatch_or_to_heartbeat() -> None:
    for old, new in RENAMED.items():
        assert new.startswith("edgewatch.") or new.startswith(HEARTBEAT_PREFIXES), (old, new)
        assert new not in RETIRED, f"{old} → {new}, itself retired"


def test_no_retired_name_is_mapped(mapped_fields: dict[str, dict[str, Any]]) -> None:
    for kind, fields in mapped_fields.items():
        assert RETIRED.isdisjoint(fields), (kind, sorted(RETIRED & fields.keys()))
