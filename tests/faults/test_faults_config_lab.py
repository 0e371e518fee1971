"""Every config the lab writes still loads under the stricter validation.

The lab renders an edgewatch config for each scenario (lab/ewconfig.py) at the speeds the tests
and the lab CLI use; each must pass ``load_config`` and the start-up checks ``run`` makes
(writable folders, the netinfo table), or a stricter rule would break the lab.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import ewconfig, netinfo, pki
from lab.clock import ScenarioClock
from lab.plan import AddressPlan
from lab.scenario import load_scenario
from pipeline.config import MIN_REAL_INTERVAL_S, check_writable_dirs, load_config
from pipeline.probe.netinfo import NetinfoTable

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "lab" / "scenarios").glob("*.toml"))
SPEEDS = (1.0, 600.0, 900.0, 3600.0)  # real time, study-14d live, lab fixtures, lab CLI default


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
