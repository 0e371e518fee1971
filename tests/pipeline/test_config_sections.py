"""The shape of the config package: one parser per section, defaults read from the dataclasses.

What the split makes testable: every Config field has exactly one section that produces it, an
empty config yields the dataclass defaults (so no parser keeps a second copy of a number), and
problems come in the order of the sections.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline.config import (
    Config,
    ConfigError,
    ElasticsearchSettings,
    Limits,
    Schedule,
    Timeouts,
    load_config,
    parse_config,
)
from pipeline.config.load import SECTIONS
from pipeline.config.reader import Reader

MINIMAL = {
    "targets": [{"name": "api.lab.test"}],
    "resolvers": [{"name": "r", "address": "127.0.0.1"}],
}


def test_every_config_field_comes_from_exactly_one_section(tmp_path: Path) -> None:
    produced: dict[str, str] = {}
    fields: dict[str, object] = {}
    r = Reader(dict(MINIMAL), tmp_path, {}, {})
    for name, parse in SECTIONS:
        out = parse(r, fields)
        for key in out:
            assert key not in produced, f"{key} from both {produced[key]} and {name}"
            produced[key] = name
        fields |= out
    assert r.problems == []
    assert set(produced) == {f.name for f in dataclasses.fields(Config)} - {"source"}


def test_an_empty_section_yields_the_dataclass_defaults(tmp_path: Path) -> None:
    cfg = parse_config(MINIMAL, base=tmp_path, env={})
    assert (cfg.schedule, cfg.timeouts, cfg.limits) == (Schedule(), Timeouts(), Limits())
    assert cfg.state_dir == tmp_path / Config.state_dir
    assert cfg.store_dir == tmp_path / Config.store_dir
    assert (cfg.clock, cfg.tls_ca_file, cfg.rdns_resolver, cfg.netinfo_table) == (None,) * 4
    assert (cfg.rdns_enabled, cfg.keep_raw_answers, cfg.sinks) == (
        Config.rdns_enabled, Config.keep_raw_answers, Config.sinks)
    t, r = cfg.targets[0], cfg.resolvers[0]
    assert (t.record_types, t.port, r.port, r.transport, r.provider) == (("A",), 443, 53, "udp", "")


def test_an_empty_elasticsearch_section_yields_its_dataclass_defaults(tmp_path: Path) -> None:
    es = parse_config(MINIMAL, base=tmp_path, env={"ES_URL": "http://127.0.0.1:9200"}
                      ).elasticsearch
    want = ElasticsearchSettings(url="http://127.0.0.1:9200")
    for f in dataclasses.fields(ElasticsearchSettings):
        got, default = getattr(es, f.name), getattr(want, f.name)
        assert got == (tmp_path / default if isinstance(default, Path) else default), f.name


@pytest.mark.parametrize("transport, port", [("udp", 53), ("tcp", 53), ("dot", 853)])
def test_the_resolver_port_follows_its_transport(transport: str, port: int) -> None:
    data = {**MINIMAL, "resolvers": [{"name": "r", "address": "127.0.0.1",
                                      "transport": transport}]}
    assert parse_config(data, env={}).resolvers[0].port == port


def test_problems_come_in_the_order_of_the_sections() -> None:
    data = {"resolvers": [{"name": "r", "address": "x"}], "targets": [{"name": "-a-.test"}],
            "sinks": {"enabled": []}, "dns": {"keep_raw": 1}, "state": {"dir": 1},
            "limits": {"concurrency": 0}, "schedule": {"interval": "1ms"},
            "observer": {"name": " "}}
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    keys = [k for k, _ in err.value.problems]
    assert keys == ["observer.name", "schedule.interval", "limits.concurrency", "state.dir",
                    "dns.keep_raw", "sinks.enabled", "targets[0].name", "resolvers[0].address"]
    assert {k.split(".")[0].split("[")[0] for k in keys} <= {name for name, _ in SECTIONS}


def test_load_config_builds_the_config_with_its_source(tmp_path: Path) -> None:
    f = tmp_path / "edgewatch.toml"
    f.write_text('[[targets]]\nname = "a.test"\n[[resolvers]]\nname = "r"\naddress = "127.0.0.1"\n')
    cfg = load_config(f, env={})
    assert cfg.source == f
    assert cfg == parse_config({"targets": [{"name": "a.test"}],
                                "resolvers": [{"name": "r", "address": "127.0.0.1"}]},
                               base=tmp_path, env={})  # source does not take part in ==
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.source = None  # type: ignore[misc]


def test_the_event_loop_is_validated_and_overridable(tmp_path: Path) -> None:
    from pipeline import eventloop

    assert parse_config(MINIMAL, tmp_path, env={}).event_loop == "asyncio"
    cfg = parse_config({**MINIMAL, "runtime": {"event_loop": "asyncio"}}, tmp_path,
                       env={"EDGEWATCH_RUNTIME__EVENT_LOOP": "uvloop"})
    assert cfg.event_loop == "uvloop" and eventloop.loop_name(cfg.event_loop) == "uvloop"
    assert eventloop.loop_factory("asyncio") is None
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, "runtime": {"event_loop": "trio"}}, tmp_path, env={})
    assert [key for key, _ in err.value.problems] == ["runtime.event_loop"]
    assert "asyncio, auto, uvloop" in str(err.value)
