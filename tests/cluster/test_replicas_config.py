"""``[elasticsearch] replicas``: validated at start, and what setup puts in the templates.

No service: the config parser and the template bodies only. Setup against one node (0) and
three (1) is tested on real nodes: tests/es/test_mappings.py and test_cluster_faults.py.
"""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, parse_config
from pipeline.es import names, templates

BASE = {
    "targets": [{"name": "api.lab.test"}],
    "resolvers": [{"name": "r", "address": "127.0.0.1"}],
}


def replicas(value: object = None, env: dict[str, str] | None = None) -> int | None:
    es = {"url": "http://127.0.0.1:9200"}
    if value is not None:
        es["replicas"] = value  # type: ignore[assignment]
    cfg = parse_config({**BASE, "elasticsearch": es}, env=env or {})
    assert cfg.elasticsearch is not None
    return cfg.elasticsearch.replicas


def test_auto_by_default_a_number_when_given_and_from_the_environment() -> None:
    assert replicas() is None and replicas("auto") is None
    assert replicas(0) == 0 and replicas(2) == 2
    assert replicas("auto", env={"EDGEWATCH_ELASTICSEARCH__REPLICAS": "1"}) == 1


@pytest.mark.parametrize("value", ["two", -1, 33, True, 1.5])
def test_anything_else_is_one_problem_naming_the_key(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        replicas(value)
    (key, reason), = caught.value.problems
    assert key == "elasticsearch.replicas" and "\n" not in reason


def test_setup_replaces_auto_expand_with_the_count_in_both_settings_templates() -> None:
    for count in (0, 1):
        bodies = {o.name: o.body for o in templates.desired_objects(ilm=False, replicas=count)}
        for name in (names.CHECK_SETTINGS, names.RUN_SETTINGS):
            index = bodies[name]["template"]["settings"]["index"]
            assert index["number_of_replicas"] == count and "auto_expand_replicas" not in index
    one = {o.name: o.hash for o in templates.desired_objects(ilm=False, replicas=1)}
    zero = {o.name: o.hash for o in templates.desired_objects(ilm=False, replicas=0)}
    # a changed count is a changed template (setup says "updated"), nothing else changes
    assert {n for n in one if one[n] != zero[n]} == {names.CHECK_SETTINGS, names.RUN_SETTINGS}


def test_setup_brings_an_existing_runs_index_to_the_count_in_place(es, es_url: str,
                                                                   es_namespace: str,
                                                                   tmp_path) -> None:
    """On the session's one-node cluster "auto" is 0: a runs index given a replica by hand (the
    way a cluster that shrank leaves it) is set back in place, then reported unchanged."""
    import io

    from pipeline.commands.setup import setup
    from pipeline.config import ElasticsearchSettings

    settings = ElasticsearchSettings(url=es_url, namespace=es_namespace,
                                     spool_dir=tmp_path / "spool")
    runs = names.runs_index(es_namespace)
    key = ("settings", f"{runs} number_of_replicas")
    first = {(o.kind, o.name): o for o in setup(settings, out=io.StringIO())}
    assert first[("replicas", "check and runs")].detail == "auto: 1 data node(s)"
    assert first[key].action == "unchanged"
    es.indices.put_settings(index=runs, settings={"index.number_of_replicas": 1})
    fixed = {(o.kind, o.name): o for o in setup(settings, out=io.StringIO())}
    assert (fixed[key].action, fixed[key].detail) == ("updated", "1 → 0")
    got = es.indices.get_settings(index=runs, flat_settings=True)[runs]["settings"]
    assert got["index.number_of_replicas"] == "0"
    again = {(o.kind, o.name): o for o in setup(settings, out=io.StringIO())}
    assert again[key].action == "unchanged"
