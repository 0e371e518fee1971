"""Every config the lab writes still loads under the stricter validation.

The lab renders an edgewatch config for each scenario (lab/ewconfig.py) at the speeds the tests
and the lab CLI use; each must pass ``load_config`` and the start-up checks ``run`` makes
(writable folders, the netinfo table), or a stricter rule would break the lab. Every duration
the lab writes is parsed with the pipeline's own parser, for every scenario and for a sample of
grids (compound ones such as 1h30m included) and speeds: the lab imports nothing from the
pipeline, so this is where the two duration grammars are held together.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from lab import ewconfig, netinfo, pki
from lab.clock import ScenarioClock
from lab.plan import AddressPlan
from lab.scenario import Scenario, load_scenario
from pipeline.config import (
    MIN_REAL_INTERVAL_S,
    ConfigError,
    check_writable_dirs,
    load_config,
    parse_duration,
)
from pipeline.probe.netinfo import NetinfoTable

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "lab" / "scenarios").glob("*.toml"))
SPEEDS = (1.0, 600.0, 900.0, 3600.0)  # real time, study-14d live, lab fixtures, lab CLI default
DURATION_SECTIONS = ("schedule", "timeouts")  # the tables of the rendered config that hold them
# scenario grids the writer turns into compound durations, and their expected spelling
GRIDS = {1.0: "1s", 1.5: "1s500ms", 90.0: "1m30s", 900.0: "15m", 5400.0: "1h30m",
         27450.0: "7h37m30s", 90061.25: "1d1h1m1s250ms"}


def test_there_are_scenarios_to_check() -> None:
    assert {p.stem for p in SCENARIOS} >= {"quick", "study-14d"}


@pytest.mark.parametrize("speed", SPEEDS)
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_rendered_lab_config_loads(tmp_path: Path, path: Path, speed: float) -> None:
    scenario = load_scenario(path)
    certs = pki.generate(tmp_path / "pki", [t.name for t in scenario.targets],
                         scenario.wrong_name)
    table = netinfo.write_iptoasn(scenario, tmp_path / "ip2asn.tsv")
    clock = ScenarioClock.starting_now(scenario.start, speed)
    text = ewconfig.render(scenario, AddressPlan(), clock, certs.ca, table)
    config = ewconfig.write(tmp_path / "edgewatch.toml", text)
    cfg = load_config(config, env={})
    check_writable_dirs(cfg)
    NetinfoTable.load(cfg.netinfo_table)
    assert [t.name for t in cfg.targets] == [t.name for t in scenario.targets]
    assert len(cfg.resolvers) == len(scenario.resolvers)
    assert cfg.schedule.interval_s == scenario.grid
    assert cfg.schedule.interval_s / cfg.clock.speed >= MIN_REAL_INTERVAL_S
    assert_durations_parse(text, scenario)


def assert_durations_parse(text: str, scenario: Scenario) -> None:
    """Every duration the lab wrote parses with the pipeline's parser to what the lab meant."""
    data = tomllib.loads(text)
    written = {f"{section}.{key}": value for section in DURATION_SECTIONS
               for key, value in data[section].items()}
    meant = {"schedule.interval": scenario.grid, "schedule.jitter": 0.0,
             **{f"timeouts.{f.name}": f.default for f in dataclasses.fields(ewconfig.Timeouts)}}
    assert {key: parse_duration(value) for key, value in written.items()} == meant


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, Path, Path]:
    """The quick scenario with its CA and netinfo table, made once for the sample below."""
    scenario = load_scenario(next(p for p in SCENARIOS if p.stem == "quick"))
    folder = tmp_path_factory.mktemp("quick")
    certs = pki.generate(folder / "pki", [t.name for t in scenario.targets], scenario.wrong_name)
    return scenario, certs.ca, netinfo.write_iptoasn(scenario, folder / "ip2asn.tsv")


@pytest.mark.parametrize("speed", (*SPEEDS, 9000.0))
@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_compound_grids_are_written_and_read_as_one_grammar(
        tmp_path: Path, quick: tuple[Scenario, Path, Path], grid: float, speed: float) -> None:
    """Any grid the lab can write is read back exactly, or refused for its real interval only."""
    base, ca, table = quick
    scenario = dataclasses.replace(base, grid=grid)
    clock = ScenarioClock.starting_now(scenario.start, speed)
    text = ewconfig.render(scenario, AddressPlan(), clock, ca, table)
    assert tomllib.loads(text)["schedule"]["interval"] == GRIDS[grid]
    assert_durations_parse(text, scenario)
    config = ewconfig.write(tmp_path / "edgewatch.toml", text)
    if grid / speed >= MIN_REAL_INTERVAL_S:
        assert load_config(config, env={}).schedule.interval_s == grid
    else:
        with pytest.raises(ConfigError) as err:
            load_config(config, env={})
        assert [key for key, _ in err.value.problems] == ["schedule.interval"]
        assert "real; the minimum is 0.1s" in str(err.value)
