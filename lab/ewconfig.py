"""The edgewatch config the lab writes: points the pipeline at the running lab.

The pipeline parses this file, so the keys here are a contract (see docs/LAB.md); TOML is written
by hand because the standard library only reads TOML. Durations are written in the pipeline's
grammar: the interval by ``format_duration`` ("15m", "1h30m"), the timeouts as TOML numbers of
seconds; tests/faults/test_faults_config_lab.py parses each with the pipeline's parser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lab.clock import ScenarioClock
from lab.plan import AddressPlan
from lab.scenario import Observer, Scenario
from lab.timeparse import format_duration, iso


@dataclass(frozen=True)
class Timeouts:
    """Real seconds the observer waits; small because everything is on loopback."""

    dns: float = 0.4
    connect: float = 0.3
    tls: float = 0.5
    http: float = 0.5


def _q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def rdns_resolver(scenario: Scenario, plan: AddressPlan) -> str:
    """A resolver without faults for PTR lookups (ip:port)."""
    for p, r in zip(plan.resolvers(scenario), scenario.resolvers, strict=True):
        if r.faults is None:
            return f"{p.listen}:{p.port}"
    p = plan.resolvers(scenario)[0]
    return f"{p.listen}:{p.port}"


def _observer(observer: Observer | None) -> list[str]:
    """The [observer] table, and for a scenario's observer the address it sends from."""
    if observer is None:
        return ["[observer]", 'name = "lab-observer"', ""]
    return ["[observer]", f"name = {_q(observer.name)}", f"geo = {{ name = {_q(observer.geo)} }}",
            "", "[probe]", f"source_address = {_q(str(observer.source))}", ""]


def render(scenario: Scenario, plan: AddressPlan, clock: ScenarioClock, ca_file: Path,
           netinfo: Path, timeouts: Timeouts = Timeouts(), observer: Observer | None = None
           ) -> str:
    """The config of the lab's default observer, or of one of the scenario's observers."""
    lines = [
        f"# edgewatch config for the lab (scenario {scenario.name!r}, speed {clock.speed:g})",
        "# written by edgewatch-lab; ground truth: edgewatch-lab truth --scenario "
        f"{scenario.path}",
        "",
        *_observer(observer),
        "[schedule]",
        f"interval = {_q(format_duration(scenario.grid))}          # scenario time",
        'jitter = "0s"',
        "",
        "[clock]",
        f"start = {_q(iso(clock.start))}",
        f"anchor = {clock.anchor!r}",
        f"speed = {float(clock.speed)!r}",
        "",
        "[timeouts]                # real seconds",
        f"dns = {timeouts.dns!r}",
        f"connect = {timeouts.connect!r}",
        f"tls = {timeouts.tls!r}",
        f"http = {timeouts.http!r}",
        "",
        "[tls]",
        f"ca_file = {_q(str(ca_file))}",
        "",
        "[netinfo]",
        f"table = {_q(str(netinfo))}",
        "",
        "[rdns]",
        f"resolver = {_q(rdns_resolver(scenario, plan))}",
    ]
    for target in scenario.targets:
        lines += [
            "",
            "[[targets]]",
            f"name = {_q(target.name)}",
            f"record_types = [{', '.join(_q(t) for t in scenario.record_types(target))}]",
            f"port = {plan.edge_port}",
            'http_path = "/directory"',
        ]
    for p, r in zip(plan.resolvers(scenario), scenario.resolvers, strict=True):
        lines += [
            "",
            "[[resolvers]]",
            f"name = {_q(r.name)}",
            f"address = {_q(p.listen)}",
            f"port = {p.port}",
            'transport = "udp"',
            f"provider = {_q(r.provider)}",
        ]
        subnet = r.client_subnet or r.ignored_subnet
        if subnet is not None:
            lines.append(f"client_subnet = {_q(str(subnet))}")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
