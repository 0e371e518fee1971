"""Who asks the lab, read from a scenario file: observers, and resolvers that pass on the asker.

A scenario with ``[[observers]]`` stands for probes in different places: each sends from its own
loopback address, and a pdns-recursor with ``client_address_ecs = true`` passes that address on
to the authoritative server as EDNS Client Subnet (truncated to /24, pdns's ``ecs-ipv4-bits``),
where a view's ``client_subnets`` pick the answer. Unbound and kresd resolvers answer every
observer alike (their view is their own outgoing address), so observers overlap there and
differ where the resolver forwards who asked: what a public resolver with ECS does for clients
on different continents.

Also here: the last check of a loaded scenario (no view ever gets an empty answer).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from lab.scenario import RECORD_TYPES, Observer, Scenario, ScenarioError, of_type
from lab.scenario_fields import FieldReader

#: pdns-recursor's ecs-ipv4-bits: how much of the client's address reaches the server
CLIENT_ECS_BITS = 24
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
# 127.53-59.x.x hold the lab's DNS plans (authoritative, resolvers, their outgoing addresses)
_PLANS = tuple(ipaddress.IPv4Network(f"127.{o}.0.0/16") for o in range(53, 60))


def client_ecs(source: ipaddress.IPv4Address) -> ipaddress.IPv4Network:
    """The subnet pdns-recursor sends for a client at ``source``."""
    return ipaddress.IPv4Network(f"{source}/{CLIENT_ECS_BITS}", strict=False)


def client_address_ecs(reader: FieldReader, item: dict[str, Any], key: str,
                       software: str) -> bool:
    """``resolvers[i].client_address_ecs``: only pdns-recursor, and not with a fixed subnet."""
    on = reader._get(item, key, "client_address_ecs", bool, False)
    if on and software != "pdns-recursor":
        raise ScenarioError(f"{key}.client_address_ecs: needs software = \"pdns-recursor\" "
                            "(the ECS forwarder of the lab, see docs/LAB.md)")
    if on and ("client_subnet" in item or "ignored_subnet" in item):
        raise ScenarioError(f"{key}.client_address_ecs: not with client_subnet/ignored_subnet "
                            "(the observer sends no subnet of its own)")
    return bool(on)


def read_observers(reader: FieldReader, raw: Any) -> tuple[Observer, ...]:
    """``[[observers]]``: unique names, each a distinct /24 of loopback outside the DNS plans."""
    if not isinstance(raw, list):
        raise ScenarioError("observers: must be an array of tables ([[observers]])")
    out: list[Observer] = []
    for i, item in enumerate(raw):
        key = f"observers[{i}]"
        item = reader._table(item, key)
        reader._unknown(item, key, {"name", "source", "geo"})
        name = reader._get(item, key, "name", str)
        if not name.strip() or any(o.name == name for o in out):
            raise ScenarioError(f"{key}.name: empty or duplicate observer {name!r}")
        try:
            source = ipaddress.IPv4Address(reader._get(item, key, "source", str))
        except ValueError as exc:
            raise ScenarioError(f"{key}.source: {exc}") from exc
        if source not in _LOOPBACK or any(source in p for p in _PLANS):
            raise ScenarioError(f"{key}.source: must lie in 127.0.0.0/8 outside the lab's "
                                "DNS plans 127.53-59.0.0/16")
        if any(client_ecs(o.source) == client_ecs(source) for o in out):
            raise ScenarioError(f"{key}.source: shares its /{CLIENT_ECS_BITS} with another "
                                "observer (the resolvers could not tell them apart)")
        geo = reader._get(item, key, "geo", str, name)
        out.append(Observer(name=name, source=source, geo=geo))
    return tuple(out)


def check_nonempty_answers(scenario: Scenario) -> None:
    """Every target must answer every view with at least one address at every grid point, in
    each family it has (A always; AAAA when it hands out IPv6 at all)."""
    from lab.rotation import addresses_at

    types = {t.name: scenario.record_types(t) for t in scenario.targets}
    t = scenario.start
    while t < scenario.end:
        for target in scenario.targets:
            for view in scenario.views:
                answer = addresses_at(target, view.name, t)
                for rdtype in types[target.name] or (RECORD_TYPES[4],):
                    if not of_type(answer, rdtype):
                        raise ScenarioError(
                            f"targets.{target.name}: view {view.name!r} gets an empty answer"
                            f" ({rdtype}) at scenario offset {t - scenario.start:g}s; add a rule"
                            " covering it")
        t += scenario.grid
