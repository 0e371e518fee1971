"""The observers scenario: probes in three places, one resolver passing the asker's /24 on.

Without daemons: the loader's checks of ``[[observers]]`` and ``client_address_ecs``, the truth
per observer (``GroundTruth.for_observer``), the pdns-recursor lines that make it real and the
edgewatch config each observer gets (tests/integration/test_observers_lab.py runs it all).
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab import ewconfig, pki
from lab.clock import ScenarioClock
from lab.daemons.pdns import config_text
from lab.plan import AddressPlan
from lab.scenario import SCENARIO_DIR, ScenarioError, load_scenario
from lab.truth import GroundTruth, poll_times
from pipeline.config import parse_config

OBSERVERS = (SCENARIO_DIR / "observers.toml").read_text()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_the_scenario_has_three_observers_in_distinct_subnets() -> None:
    s = load_scenario("observers")
    assert [(o.name, str(o.source), o.geo) for o in s.observers] == [
        ("lab-nyc", "127.0.21.1", "us-east"), ("lab-fra", "127.0.22.1", "eu-central"),
        ("lab-syd", "127.0.23.1", "ap-southeast")]
    assert [r.name for r in s.resolvers if r.client_address_ecs] == ["lab-pdns-ecs"]


@pytest.mark.parametrize(("old", "new", "key"), [
    ('source = "127.0.23.1"', 'source = "192.0.2.1"', "observers[2].source"),
    ('source = "127.0.23.1"', 'source = "127.53.0.9"', "observers[2].source"),
    ('source = "127.0.23.1"', 'source = "127.0.22.9"', "observers[2].source"),  # fra's /24
    ('name = "lab-syd"', 'name = "lab-fra"', "observers[2].name"),
    ('geo = "ap-southeast"', 'place = "ap-southeast"', "observers[2].place"),
    ('view = "na"\n\n[[resolvers]]\nname = "lab-kresd"',
     'view = "na"\nclient_address_ecs = true\n\n[[resolvers]]\nname = "lab-kresd"',
     "resolvers[0].client_address_ecs"),  # unbound: not the lab's ECS forwarder
])
def test_validation_names_the_bad_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in OBSERVERS
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, OBSERVERS.replace(old, new, 1)))
    assert str(err.value).startswith(key), str(err.value)


def test_the_truth_differs_by_observer_only_where_the_resolver_passes_the_asker_on() -> None:
    s = load_scenario("observers")
    truth = GroundTruth(s, speed=900)
    views = {o.name: {r.name: truth.for_observer(o.name).view_of(r.name) for r in s.resolvers}
             for o in s.observers}
    assert views == {
        "lab-nyc": {"lab-unbound": "na", "lab-kresd": "na", "lab-pdns-ecs": "na"},
        "lab-fra": {"lab-unbound": "na", "lab-kresd": "na", "lab-pdns-ecs": "eu"},
        "lab-syd": {"lab-unbound": "na", "lab-kresd": "na", "lab-pdns-ecs": "ap"},
    }
    assert truth.view_of("lab-pdns-ecs") == "na"  # the default observer, 127.0.0.1
    times = poll_times(s.start, s.start + 6 * 3600, "15m")
    seen = {o.name: {a for ans in truth.for_observer(o.name).observe(
        "lab-pdns-ecs", "api.lab.test", times) for a in ans.addresses} for o in s.observers}
    assert seen["lab-fra"] & seen["lab-nyc"] == {"127.60.0.30"}  # overlapping pools
    assert seen["lab-syd"].isdisjoint(seen["lab-nyc"] | seen["lab-fra"])  # a disjoint one


def _spec(resolver_name: str) -> SimpleNamespace:
    s = load_scenario("observers")
    plan = SimpleNamespace(daemon="127.53.3.3", port=53, outgoing="127.53.2.3")
    return SimpleNamespace(plan=plan, workdir=Path("/tmp/x"), auth="127.53.0.1", auth_port=53,
                           resolver=s.resolver(resolver_name), speed=900.0,
                           real_seconds=lambda v: int(v // 900))


def test_pdns_adds_the_askers_address_only_when_asked() -> None:
    text = config_text(_spec("lab-pdns-ecs"))  # type: ignore[arg-type]
    assert "ecs-add-for=127.0.0.0/8" in text.splitlines()
    assert "edns-subnet-allow-list=127.53.0.1" in text.splitlines()
    quick = load_scenario("quick")
    spec = _spec("lab-pdns-ecs")
    spec.resolver = quick.resolver("lab-quad9-ecs")  # a fixed client_subnet: no ecs-add-for
    assert "ecs-add-for" not in config_text(spec)  # type: ignore[arg-type]


def test_each_observer_gets_a_config_naming_it_and_its_source(tmp_path: Path) -> None:
    s = load_scenario("observers")
    plan = AddressPlan(octet=53, edge_port=443)
    ca = pki.generate(tmp_path / "pki", [t.name for t in s.targets], s.wrong_name).ca
    (tmp_path / "ip2asn.tsv").write_text("")
    clock = ScenarioClock(start=s.start, anchor=time.time(), speed=900.0)
    for o in s.observers:
        text = ewconfig.render(s, plan, clock, ca, tmp_path / "ip2asn.tsv", observer=o)
        cfg = parse_config(tomllib.loads(text), base=tmp_path)
        assert (cfg.observer_name, cfg.observer_geo, cfg.source_address) == (
            o.name, {"name": o.geo}, str(o.source))
