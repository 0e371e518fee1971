"""Scenario files: the shipped ones load, and bad ones are rejected naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.rotation import addresses_at
from lab.scenario import SCENARIO_DIR, ScenarioError, load_scenario

QUICK = (SCENARIO_DIR / "quick.toml").read_text()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["quick", "study-14d", "afterlife", "dualstack"])
def test_shipped_scenarios_load(name: str) -> None:
    s = load_scenario(name)
    assert s.targets and s.resolvers and s.networks
    assert all(s.network_of(a) is not None for a in s.edge_addresses())


def test_study_has_fourteen_resolvers_and_the_study_chain() -> None:
    s = load_scenario("study-14d")
    assert len(s.resolvers) == 14
    assert s.duration == 14 * 86400
    acme = s.target("acme-v02.api.lab.test")
    assert acme.chain == ("acme-v02.api.lab.test", "acme-v02.api.lab.test.edgekey.lab.test",
                          "e1234.a.edge.lab.test")
    assert acme.ttl == 20
    assert {r.software for r in s.resolvers} == {"unbound", "kresd", "pdns-recursor"}
    assert len({n.asn for n in s.networks}) >= 3


def test_answers_never_change_near_the_poll_grid() -> None:
    """Around every grid point (±guard) every view's answer is constant."""
    for name in ("quick", "study-14d", "dualstack"):
        s = load_scenario(name)
        t = s.start
        while t < s.end:
            for target in s.targets:
                for view in s.views:
                    here = addresses_at(target, view.name, t)
                    assert addresses_at(target, view.name, t - s.guard + 1) == here
                    assert addresses_at(target, view.name, t + s.guard - 1) == here
            t += s.grid


@pytest.mark.parametrize(("old", "new", "key"), [
    ('phase = "7m30s"', 'phase = "15m"', "targets[0].rules[0].phase"),
    ('until = "1d7m30s"', 'until = "1d"', "targets[0].rules[1].until"),
    ('period = "1h"', 'period = "50m"', "targets[0].rules[0].period"),
    ('views = ["na"]', 'views = ["nowhere"]', "targets[0].rules[0].views"),
    ('kind = "rotate"', 'kind = "shuffle"', "targets[0].rules[0].kind"),
    ('software = "kresd"', 'software = "bind"', "resolvers[3].software"),
    ('drop = 0.3', 'drop = 1.3', "resolvers[3].faults.drop"),
    ('count = 2\n  stride = 1', 'count = 2\n  strid = 1', "targets[0].rules[0].strid"),
    ('prefix = "127.61.0.0/24"', 'prefix = "10.61.0.0/24"', "networks[2].prefix"),
    ('blackhole = ["127.60.0.21"]', 'blackhole = ["127.60.0.99"]', "edges.blackhole"),
    ('servfail_length = "45m"', 'servfail_length = "40m"', "resolvers[4].faults.servfail_length"),
])
def test_validation_names_the_bad_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in QUICK
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, QUICK.replace(old, new, 1)))
    assert str(err.value).startswith(key), str(err.value)


def test_empty_answer_is_rejected(tmp_path: Path) -> None:
    old = 'pool = "na-alt"\n  until = "1d7m30s"'
    assert old in QUICK
    text = QUICK.replace(old, 'pool = "na-alt"\n  until = "7m30s"')  # na-alt empty until day 1
    with pytest.raises(ScenarioError, match="empty answer"):
        load_scenario(write(tmp_path, text))


def test_unknown_scenario_name_lists_shipped_ones() -> None:
    with pytest.raises(ScenarioError, match="quick"):
        load_scenario("no-such-scenario")
