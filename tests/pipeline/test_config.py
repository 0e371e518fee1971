"""Configuration errors name the key and the reason; secrets never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import pki
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
    ca = pki.generate(tmp_path / "pki", ["a.test"], "wrong.a.test").ca
    (tmp_path / "ca.pem").write_bytes(ca.read_bytes())
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


# --- validation at load of what a cycle would otherwise trip on (issue 9) ---------------------

def problems(data: dict, env: dict[str, str] | None = None, base: Path | None = None
             ) -> dict[str, str]:
    """The problems of a config as {key: reason}; {} when it loads."""
    try:
        parse_config(data, base=base, env=env or {})
    except ConfigError as exc:
        return dict(exc.problems)
    return {}


def with_target(**target) -> dict:
    return {**MINIMAL, "targets": [{"name": "api.lab.test", **target}]}


LONG_LABEL = "a" * 64 + ".lab.test"
LONG_NAME = ".".join(["abcdefghi"] * 26) + ".test"  # 264 octets


@pytest.mark.parametrize(("name", "reason"), [
    ("", "must not be empty"),
    ("a..b", "empty label"),
    (".lab.test", "empty label"),
    ("-bad-.com", "starts or ends with '-'"),
    ("bad-.lab.test", "starts or ends with '-'"),
    ("under_score.lab.test", "characters other than letters, digits and '-'"),
    ("sp ace.lab.test", "characters other than letters"),
    (LONG_LABEL, "label of 64 octets"),
    (LONG_NAME, "264 octets long"),
    ("127.0.0.1", "is an IP address"),
    ("2001:db8::1", "is an IP address"),
    ("10.0.0.1.", "is an IP address"),
    ("1.2.3.999", "all-numeric label"),
    ("bücher.example", "write its A-label 'xn--bcher-kva.example'"),
])
def test_target_names_follow_the_dns_rules(name: str, reason: str) -> None:
    found = problems(with_target(name=name))
    assert reason in found["targets[0].name"]
    assert reason in problems(with_target(sni=name))["targets[0].sni"]


@pytest.mark.parametrize("name", ["acme-v02.api.lab.test", "A.LAB.TEST", "lab.test.",
                                  "xn--bcher-kva.example", "a" * 63 + ".test", "localhost",
                                  ".".join(["a" * 63] * 3) + "." + "b" * 61])
def test_valid_hostnames_load(name: str) -> None:
    assert len(name.rstrip(".")) <= 253
    cfg = parse_config(with_target(name=name, sni=name), env={})
    assert cfg.targets[0].name == name.rstrip(".")


def test_target_names_are_unique_whatever_their_case() -> None:
    data = {**MINIMAL, "targets": [{"name": "api.lab.test"}, {"name": "API.lab.test."}]}
    assert "unique" in problems(data)["targets"]


@pytest.mark.parametrize("port", [0, 70000, -1])
def test_ports_are_1_to_65535_everywhere(port: int) -> None:
    assert "1..65535" in problems(with_target(port=port))["targets[0].port"]
    data = {**MINIMAL, "resolvers": [{"name": "r", "address": "127.0.0.1", "port": port}]}
    assert "1..65535" in problems(data)["resolvers[0].port"]
    rdns = {**MINIMAL, "rdns": {"resolver": f"127.0.0.1:{port}"}}
    assert "65535" in problems(rdns)["rdns.resolver"]


@pytest.mark.parametrize(("value", "expected"), [("127.0.0.1", ("127.0.0.1", 53)),
                                                 ("127.0.0.2:5353", ("127.0.0.2", 5353)),
                                                 ("[::1]:65535", ("::1", 65535)),
                                                 ("::1", ("::1", 53))])
def test_rdns_resolver_parses(value: str, expected: tuple[str, int]) -> None:
    assert parse_config({**MINIMAL, "rdns": {"resolver": value}}, env={}).rdns_resolver == expected


@pytest.mark.parametrize(("value", "reason"), [("[::1]:0", "out of range"),
                                               ("127.0.0.1:", "not a number"),
                                               ("127.0.0.1:dns", "not a number"),
                                               ("[::1", "not ADDRESS[:PORT]"),
                                               ("resolver.lab.test:53", "not an IP address")])
def test_rdns_resolver_errors_say_why(value: str, reason: str) -> None:
    assert reason in problems({**MINIMAL, "rdns": {"resolver": value}})["rdns.resolver"]


@pytest.mark.parametrize(("schedule", "clock_speed", "reason"), [
    ({"interval": "1ms"}, None, "at least 1s"),
    ({"interval": "999ms"}, None, "at least 1s"),
    ({"interval": 0}, None, "at least 1s"),
    ({"interval": "1m"}, 3600.0, "real; the minimum is 0.1s"),
    ({"interval": "15m"}, 10000.0, "real; the minimum is 0.1s"),
    ({"interval": "15m", "misfire_grace": 0}, None, "must be positive"),
])
def test_interval_has_a_sane_minimum(schedule: dict, clock_speed: float | None,
                                     reason: str) -> None:
    data = {**MINIMAL, "schedule": schedule}
    if clock_speed:
        data["clock"] = {"start": "2026-03-02T00:00:00Z", "anchor": 1.8e9, "speed": clock_speed}
    assert any(reason in why for why in problems(data).values())


@pytest.mark.parametrize(("interval", "speed"), [("1s", None), ("15m", 3600.0), ("15m", 9000.0),
                                                 ("15m", 600.0), ("1s", 10.0)])
def test_the_intervals_the_lab_uses_are_valid(interval: str, speed: float | None) -> None:
    data = {**MINIMAL, "schedule": {"interval": interval}}
    if speed:
        data["clock"] = {"start": "2026-03-02T00:00:00Z", "anchor": 1.8e9, "speed": speed}
    assert problems(data) == {}


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("dns", 0, "must be positive"), ("connect", "0s", "must be positive"),
    ("tls", "2m", "at most 60s"), ("http", float("inf"), "finite"),
    ("dns", float("nan"), "finite"), ("connect", "-1s", "is not a duration"),
])
def test_timeouts_are_positive_and_bounded(key: str, value, reason: str) -> None:
    assert reason in problems({**MINIMAL, "timeouts": {key: value}})[f"timeouts.{key}"]


@pytest.mark.parametrize(("speed", "reason"), [(1e12, "must be in (0, 86400]"), (0, "(0, 86400]"),
                                               (-1.0, "(0, 86400]"), (float("nan"), "finite")])
def test_clock_speed_is_bounded(speed: float, reason: str) -> None:
    clock = {"start": "2026-03-02T00:00:00Z", "anchor": 1.8e9, "speed": speed}
    assert reason in problems({**MINIMAL, "clock": clock})["clock.speed"]


def test_a_clock_that_would_read_beyond_year_9999_is_refused() -> None:
    clock = {"start": "2026-03-02T00:00:00Z", "anchor": 0.0, "speed": 86400.0}
    assert "years 1..9999" in problems({**MINIMAL, "clock": clock})["clock.anchor"]


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("concurrency", 0, "at least 1"),
    ("max_addresses", 0, "at least 1"), ("concurrency", "abc", "must be an integer"),
    ("concurrency", True, "must be an integer"),
])
def test_limits(key: str, value, reason: str) -> None:
    assert reason in problems({**MINIMAL, "limits": {key: value}})[f"limits.{key}"]


def test_limits_defaults_and_range_accepted() -> None:
    cfg = parse_config({**MINIMAL, "limits": {"concurrency": 1}}, env={})
    assert (cfg.limits.concurrency, cfg.limits.max_addresses) == (1, 32)


@pytest.mark.parametrize("value", [0, 5, -5, "3"])
def test_dns_retries_is_refused_by_name_whatever_its_value(value) -> None:
    """The key never did anything (a lost query is recorded, not retried): one problem naming it,
    not a silent no-op and not the generic unknown-key line."""
    found = problems({**MINIMAL, "limits": {"dns_retries": value, "concurrency": 8}})
    assert list(found) == ["limits.dns_retries"]
    assert "no longer used" in found["limits.dns_retries"]
    assert "remove the key" in found["limits.dns_retries"]


@pytest.mark.parametrize(("enabled", "reason"), [([], "at least one sink"),
                                                 (["ndjson", "ndjson"], "twice"),
                                                 (["kafka"], "unknown sink")])
def test_sinks(enabled: list, reason: str) -> None:
    assert reason in problems({**MINIMAL, "sinks": {"enabled": enabled}})["sinks.enabled"]


@pytest.mark.parametrize(("url", "reason"), [("not a url", "https://"),
                                             ("http://127.0.0.1/dns-query", "https://"),
                                             ("https:///dns-query", "no host"),
                                             ("https://127.0.0.1:0/dns-query", "out of range"),
                                             ("https://127.0.0.1:70000/q", "out of range")])
def test_doh_url_is_an_https_url_with_a_host(url: str, reason: str) -> None:
    data = {**MINIMAL, "resolvers": [{"name": "r", "address": "127.0.0.1", "transport": "doh",
                                      "url": url}]}
    assert reason in problems(data)["resolvers[0].url"]


@pytest.mark.parametrize(("url", "reason"), [("http://127.0.0.1:99999", "99999 is out of range"),
                                             ("http://127.0.0.1:http", "not a number"),
                                             ("ftp://127.0.0.1:9200", "http:// or https://"),
                                             ("http://:9200", "no host")])
def test_elasticsearch_url_parses_with_a_valid_port(url: str, reason: str) -> None:
    assert reason in problems({**MINIMAL, "elasticsearch": {"url": url}})["elasticsearch.url"]
    from_env = problems(MINIMAL, env={"ES_URL": url})
    assert reason in from_env["ES_URL"] and "overrides elasticsearch.url" in from_env["ES_URL"]


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pki.generate(tmp_path_factory.mktemp("pki"), ["a.test"], "wrong.a.test").ca


def test_ca_files_must_exist_and_be_pem_certificates(tmp_path: Path, ca_pem: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a certificate\n")
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nMIIBxyz\n-----END CERTIFICATE-----\n")
    cases = {tmp_path / "missing.pem": "does not exist", text: "not a PEM certificate",
             broken: "not a usable PEM", tmp_path: "is not a file"}
    for path, reason in cases.items():
        assert reason in problems({**MINIMAL, "tls": {"ca_file": str(path)}})["tls.ca_file"]
        es = {"url": "https://127.0.0.1:9200", "ca_file": str(path)}
        assert reason in problems({**MINIMAL, "elasticsearch": es})["elasticsearch.ca_file"]
        env = {"ES_URL": "https://127.0.0.1:9200", "ES_CA_FILE": str(path)}
        assert reason in problems(MINIMAL, env=env)["ES_CA_FILE"]
    cfg = parse_config({**MINIMAL, "tls": {"ca_file": str(ca_pem)}},
                       env={"ES_URL": "https://127.0.0.1:9200", "ES_CA_FILE": str(ca_pem)})
    assert cfg.tls_ca_file == ca_pem and cfg.elasticsearch.ca_file == ca_pem


def test_secret_files_missing_empty_or_binary_name_the_key(tmp_path: Path) -> None:
    empty, binary = tmp_path / "empty", tmp_path / "binary"
    empty.write_text("\n")
    binary.write_bytes(b"\xff\xfe\x00junk")
    cases = {tmp_path / "missing": "cannot read", empty: "is empty", binary: "not UTF-8"}
    for path, reason in cases.items():
        es = {"url": "https://127.0.0.1:9200", "api_key_file": str(path),
              "password_file": str(path)}
        found = problems({**MINIMAL, "elasticsearch": es})
        assert reason in found["elasticsearch.api_key_file"]
        assert reason in found["elasticsearch.password_file"]


def test_an_override_error_names_the_variable_not_the_file() -> None:
    found = problems(MINIMAL, env={"EDGEWATCH_LIMITS__CONCURRENCY": "abc",
                                   "EDGEWATCH_SCHEDULE__INTERVAL": "1ms",
                                   "EDGEWATCH_NOSUCH__KEY": "1"})
    assert found["EDGEWATCH_LIMITS__CONCURRENCY=abc"] == (
        "must be an integer, got a string (overrides limits.concurrency)")
    assert "at least 1s" in found["EDGEWATCH_SCHEDULE__INTERVAL=1ms"]
    assert "unknown key" in found["EDGEWATCH_NOSUCH__KEY=1"]
    assert "limits.concurrency" not in found  # the file is not blamed


def test_an_override_never_echoes_a_secret() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, "elasticsearch": {"url": "https://127.0.0.1:9200"}},
                     env={"EDGEWATCH_ELASTICSEARCH__PASSWORD": "hunter2"})
    assert "hunter2" not in str(err.value)
    assert "EDGEWATCH_ELASTICSEARCH__PASSWORD" in dict(err.value.problems)


def test_overrides_of_list_sections_apply_to_every_entry() -> None:
    data = {**MINIMAL, "targets": [{"name": "a.lab.test"}, {"name": "b.lab.test", "port": 8443}],
            "resolvers": [{"name": "r1", "address": "127.0.0.1"},
                          {"name": "r2", "address": "127.0.0.2"}]}
    cfg = parse_config(data, env={"EDGEWATCH_TARGETS__PORT": "9443",
                                  "EDGEWATCH_RESOLVERS__PORT": "5353"})
    assert [t.port for t in cfg.targets] == [9443, 9443]
    assert [r.port for r in cfg.resolvers] == [5353, 5353]
    assert data["targets"][1]["port"] == 8443  # the caller's data is not changed
    found = problems(data, env={"EDGEWATCH_TARGETS__PORT": "0"})
    assert found == {"EDGEWATCH_TARGETS__PORT=0": "must be 1..65535, got 0 "
                                                  "(overrides targets[*].port)"}


def test_folders_that_are_files_are_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    data = {**MINIMAL, "state": {"dir": "state"}, "store": {"dir": "state/data"},
            "elasticsearch": {"url": "http://127.0.0.1:9200", "spool_dir": "state",
                              "dead_letter_dir": str(tmp_path / "ok")}}
    found = problems(data, base=tmp_path)
    assert "is a file, not a directory" in found["state.dir"]
    assert "cannot be created" in found["store.dir"] and "state is a file" in found["store.dir"]
    assert "is a file" in found["elasticsearch.spool_dir"]
    assert "elasticsearch.dead_letter_dir" not in found


def test_check_writable_dirs_names_each_folder(tmp_path: Path) -> None:
    from pipeline.config import check_writable_dirs

    cfg = parse_config({**MINIMAL, "state": {"dir": "s"}, "store": {"dir": "d"}},
                       base=tmp_path, env={})
    check_writable_dirs(cfg)  # missing but creatable: fine
    (tmp_path / "s").mkdir()
    (tmp_path / "d").write_text("")  # appeared after load
    with pytest.raises(ConfigError) as err:
        check_writable_dirs(cfg)
    assert [k for k, _ in err.value.problems] == ["store.dir"]


@pytest.mark.parametrize("path", ["directory", "/a b", "/\r\nHost: x", "/ü"])
def test_http_path_is_one_printable_request_target(path: str) -> None:
    assert "must start with /" in problems(with_target(http_path=path))["targets[0].http_path"]


def test_http_path_accepts_a_query() -> None:
    assert problems(with_target(http_path="/directory?x=1%20")) == {}


def test_unicode_and_strange_observer_values() -> None:
    assert "must not be empty" in problems({**MINIMAL, "observer": {"name": " "}})["observer.name"]
    geo = {**MINIMAL, "observer": {"geo": {"name": 1}}}
    assert "strings" in problems(geo)["observer.geo"]


def test_observer_geo_accepts_exactly_the_ecs_keys_the_mapping_declares() -> None:
    from pipeline.config import OBSERVER_GEO_KEYS
    from pipeline.es import names, templates

    every = {k: f"v-{k}" for k in OBSERVER_GEO_KEYS}
    cfg = parse_config({**MINIMAL, "observer": {"name": "p", "geo": every}})
    assert cfg.observer_geo == every
    mapped = templates.leaf_fields(
        templates.effective_mappings(names.CHECK_INDEX_TEMPLATE)["properties"])
    assert {f for f in mapped if f.startswith("observer.geo.")} == {
        f"observer.geo.{k}" for k in OBSERVER_GEO_KEYS}
    # an ECS key that is not a string field, and a made-up one: refused, naming the key
    for key in ("location", "rack"):
        found = problems({**MINIMAL, "observer": {"geo": {key: "x"}}})
        assert "unknown key" in found[f"observer.geo.{key}"] and "city_name" in found[
            f"observer.geo.{key}"]
