"""Configuration errors name the key and the reason; secrets never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config, parse_config, parse_duration

MINIMAL = {
    "targets": [{"name": "api.lab.test"}],
    "resolvers": [{"name": "r", "address": "127.0.0.1"}],
}


def test_every_problem_is_reported_with_its_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({
            "targets": [{"name": "api.lab.test", "port": 70000, "record_types": ["MX"]}],
            "resolvers": [{"name": "r", "address": "not-an-ip", "transport": "quic"}],
            "schedule": {"interval": "soon"},
            "surprise": True,
        }, env={})
    keys = {k for k, _ in err.value.problems}
    assert keys == {"targets[0].port", "targets[0].record_types", "resolvers[0].address",
                    "resolvers[0].transport", "schedule.interval", "surprise"}
    assert "schedule.interval: 'soon' is not a duration" in str(err.value)


def test_environment_overrides_and_es_url_switches_default_sink() -> None:
    cfg = parse_config(MINIMAL, env={"EDGEWATCH_SCHEDULE__INTERVAL": "5m",
                                     "ES_URL": "http://127.0.0.1:9200"})
    assert cfg.schedule.interval_s == 300
    assert cfg.sinks == ("elasticsearch",) and cfg.elasticsearch is not None
    assert parse_config(MINIMAL, env={}).sinks == ("ndjson",)


def test_secrets_come_from_env_or_file_and_never_print(tmp_path: Path) -> None:
    keyfile = tmp_path / "key"
    keyfile.write_text("c2VjcmV0LWtleQ==\n")
    data = {**MINIMAL, "elasticsearch": {"url": "https://es.lab.test:9200",
                                         "api_key_file": str(keyfile)}}
    cfg = parse_config(data, env={})
    assert cfg.elasticsearch.api_key.reveal() == "c2VjcmV0LWtleQ=="
    assert "c2VjcmV0" not in repr(cfg) and "c2VjcmV0" not in str(cfg)
    cfg = parse_config({**MINIMAL, "elasticsearch": {"url": "http://x:9200"}},
                       env={"ES_PASSWORD": "hunter2", "ES_USERNAME": "elastic"})
    assert cfg.elasticsearch.password.reveal() == "hunter2" and "hunter2" not in repr(cfg)
    with pytest.raises(ConfigError, match=r"elasticsearch\.password: secrets are not accepted"):
        parse_config({**MINIMAL, "elasticsearch": {"url": "http://x", "password": "p"}}, env={})


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    f = tmp_path / "edgewatch.toml"
    f.write_text('[tls]\nca_file = "ca.pem"\n[[targets]]\nname = "a.test"\n'
                 '[[resolvers]]\nname = "r"\naddress = "127.0.0.1"\n')
    assert load_config(f, env={}).tls_ca_file == tmp_path / "ca.pem"
    f.write_text("[[targets]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(f, env={})


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("250ms", 0.25), (30, 30),
                                               ("1.5h", 5400), ("2d", 172800)])
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "edgewatch.example.toml"
    cfg = load_config(example, env={})
    assert len(cfg.resolvers) >= 8 and cfg.schedule.interval_s == 900
    assert any("acme" in t.name for t in cfg.targets)
