"""Reading a scenario file's sections into the model of ``lab.scenario``.

Validation happens here, up front, and every error names the offending key
("targets[0].rules[2].period: ..."); the typed getters it uses are in ``scenario_fields``.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from lab.scenario import (
    CACHE_MODES,
    EDGE_BEHAVIOURS,
    IPV6_LAB_SPACE,
    RULE_KINDS,
    SOFTWARE,
    EdgeChange,
    Faults,
    Network,
    Resolver,
    Rule,
    Scenario,
    ScenarioError,
    Target,
    View,
    Withdrawal,
)
from lab.scenario_clients import check_nonempty_answers, client_address_ecs, read_observers
from lab.scenario_fields import FieldReader
from lab.timeparse import to_epoch


class ScenarioLoader(FieldReader):
    """The sections of a scenario file, each read and checked against the ones before it."""

    def scenario(self, raw: dict[str, Any]) -> Scenario:
        self._unknown(raw, "", {"scenario", "zone", "networks", "pools", "views", "targets",
                                "resolvers", "edges", "observers"})
        head = self._table(raw.get("scenario"), "scenario")
        self._unknown(head, "scenario", {"name", "description", "start", "duration", "grid",
                                         "guard", "seed", "default_view"})
        start = self._get(head, "scenario", "start", datetime)
        self.start = to_epoch(start)
        self.grid = self._duration(head, "scenario", "grid", "15m")
        self.guard = self._duration(head, "scenario", "guard", self.grid / 4)
        if not 0 <= self.guard <= self.grid / 2:
            raise ScenarioError("scenario.guard: must be between 0 and half of scenario.grid")
        duration = self._duration(head, "scenario", "duration")
        if duration <= 0:
            raise ScenarioError("scenario.duration: must be positive")

        zone = self._table(raw.get("zone", {}), "zone")
        self._unknown(zone, "zone", {"origin", "negative_ttl", "wrong_name"})
        origin = self._get(zone, "zone", "origin", str, "lab.test").strip(".").lower()
        networks = self._networks(raw.get("networks"))
        self.pools = self._pools(raw.get("pools", {}), networks)
        views = self._views(raw.get("views"))
        default_view = self._get(head, "scenario", "default_view", str, views[0].name)
        if default_view not in self.view_names:
            raise ScenarioError(f"scenario.default_view: unknown view {default_view!r}")
        targets = self._targets(raw.get("targets"), origin, networks)
        resolvers = self._resolvers(raw.get("resolvers"))
        edges_raw = dict(self._table(raw.get("edges", {}), "edges"))
        changes = self._edge_changes(edges_raw.pop("changes", None), targets)
        edges = self._edges(edges_raw, targets)
        scenario = Scenario(
            name=self._get(head, "scenario", "name", str, self.path.stem),
            description=self._get(head, "scenario", "description", str, ""),
            path=self.path,
            start=self.start,
            duration=duration,
            grid=self.grid,
            guard=self.guard,
            seed=self._get(head, "scenario", "seed", int, 0),
            origin=origin,
            negative_ttl=self._get(zone, "zone", "negative_ttl", int, 20),
            networks=networks,
            pools=self.pools,
            views=views,
            default_view=default_view,
            targets=targets,
            resolvers=resolvers,
            edge_behaviour=edges,
            edge_changes=changes,
            observers=read_observers(self, raw.get("observers", [])),
            wrong_name=self._get(zone, "zone", "wrong_name", str, f"wrong-name.{origin}"),
        )
        check_nonempty_answers(scenario)
        return scenario

    def _networks(self, raw: Any) -> tuple[Network, ...]:
        if not isinstance(raw, list) or not raw:
            raise ScenarioError("networks: must be a non-empty array of tables ([[networks]])")
        out = []
        for i, item in enumerate(raw):
            key = f"networks[{i}]"
            item = self._table(item, key)
            self._unknown(item, key, {"prefix", "asn", "as_name", "country", "ptr"})
            prefix = _network_prefix(self._get(item, key, "prefix", str), key)
            for other in out:
                if prefix.version == other.prefix.version and prefix.overlaps(other.prefix):
                    raise ScenarioError(f"{key}.prefix: overlaps {other.prefix}")
            out.append(Network(
                prefix=prefix,
                asn=self._get(item, key, "asn", int),
                as_name=self._get(item, key, "as_name", str),
                country=self._get(item, key, "country", str, "ZZ"),
                ptr=self._get(item, key, "ptr", str, "a{dashed}.deploy.edge.lab.test"),
            ))
        return tuple(out)

    def _pools(self, raw: Any, networks: tuple[Network, ...]) -> dict[str, tuple[str, ...]]:
        raw = self._table(raw, "pools")
        pools = {}
        for name, items in raw.items():
            addrs = self._addresses(f"pools.{name}", items)
            for a in addrs:
                ip = ipaddress.ip_address(a)
                if not any(ip.version == n.prefix.version and ip in n.prefix for n in networks):
                    raise ScenarioError(f"pools.{name}: {a} is in no [[networks]] prefix")
            pools[name] = addrs
        return pools

    def _views(self, raw: Any) -> tuple[View, ...]:
        if not isinstance(raw, list) or not raw:
            raise ScenarioError("views: must be a non-empty array of tables ([[views]])")
        out = []
        for i, item in enumerate(raw):
            key = f"views[{i}]"
            item = self._table(item, key)
            self._unknown(item, key, {"name", "client_subnets"})
            name = self._get(item, key, "name", str)
            if name in self.view_names:
                raise ScenarioError(f"{key}.name: duplicate view {name!r}")
            subnets = []
            for j, s in enumerate(self._get(item, key, "client_subnets", list, [])):
                try:
                    subnets.append(ipaddress.IPv4Network(s))
                except (ValueError, TypeError) as exc:
                    raise ScenarioError(f"{key}.client_subnets[{j}]: {exc}") from exc
            self.view_names.add(name)
            out.append(View(name=name, client_subnets=tuple(subnets)))
        return tuple(out)

    def _targets(self, raw: Any, origin: str, networks: tuple[Network, ...]) -> tuple[Target, ...]:
        if not isinstance(raw, list) or not raw:
            raise ScenarioError("targets: must be a non-empty array of tables ([[targets]])")
        out: list[Target] = []
        names: set[str] = set()
        for i, item in enumerate(raw):
            key = f"targets[{i}]"
            item = self._table(item, key)
            self._unknown(item, key, {"name", "chain", "ttl", "cname_ttl", "rules", "withdrawals"})
            name = self._get(item, key, "name", str).strip(".").lower()
            hops = self._get(item, key, "chain", list, [])
            chain = [name] + [str(c).strip(".").lower() for c in hops]
            for j, c in enumerate(chain):
                if not (c == origin or c.endswith("." + origin)):
                    raise ScenarioError(f"{key}.chain[{j - 1}]: {c!r} is outside zone {origin!r}")
                if c in names:
                    raise ScenarioError(f"{key}.chain: name {c!r} already used by another target")
            names.update(chain)
            rules = tuple(
                self._rule(r, f"{key}.rules[{j}]")
                for j, r in enumerate(self._get(item, key, "rules", list))
            )
            if not rules:
                raise ScenarioError(f"{key}.rules: at least one rule is needed")
            withdrawals = tuple(
                self._withdrawal(w, f"{key}.withdrawals[{j}]")
                for j, w in enumerate(self._get(item, key, "withdrawals", list, []))
            )
            out.append(Target(
                name=name,
                chain=tuple(chain),
                ttl=self._get(item, key, "ttl", int, 20),
                cname_ttl=self._get(item, key, "cname_ttl", int, 300),
                rules=rules,
                withdrawals=withdrawals,
            ))
        return tuple(out)

    def _rule(self, raw: Any, key: str) -> Rule:
        raw = self._table(raw, key)
        kind = self._get(raw, key, "kind", str)
        common = {"kind", "views", "from", "until"}
        if kind not in RULE_KINDS:
            raise ScenarioError(f"{key}.kind: must be one of {', '.join(RULE_KINDS)}")
        start, until = self._instant(raw, key, "from"), self._instant(raw, key, "until")
        if start is not None:
            self._off_grid(f"{key}.from", start)
        if until is not None:
            self._off_grid(f"{key}.until", until)
        if start is not None and until is not None and until <= start:
            raise ScenarioError(f"{key}.until: must be after {key}.from")
        views = self._views_of(raw, key)
        if kind == "stable":
            self._unknown(raw, key, common | {"addresses", "pool", "count"})
            if ("addresses" in raw) == ("pool" in raw):
                raise ScenarioError(f"{key}: give exactly one of addresses / pool")
            addrs = (self._addresses(f"{key}.addresses", raw["addresses"]) if "addresses" in raw
                     else self._pool(raw, key, "pool"))
            count = self._get(raw, key, "count", int, len(addrs))
            if not 1 <= count <= len(addrs):
                raise ScenarioError(f"{key}.count: must be between 1 and {len(addrs)}")
            return Rule(key=key, kind=kind, views=views, start=start, until=until,
                        addresses=addrs[:count])
        if kind == "rotate":
            self._unknown(raw, key, common | {"pool", "count", "period", "phase", "stride"})
            pool = self._pool(raw, key, "pool")
            count = self._get(raw, key, "count", int, 2)
            if not 1 <= count <= len(pool):
                raise ScenarioError(f"{key}.count: must be between 1 and the pool size {len(pool)}")
            period = self._duration(raw, key, "period")
            self._multiple(f"{key}.period", period, self.grid, "scenario.grid")
            phase = self._duration(raw, key, "phase", self.grid / 2)
            self._off_grid(f"{key}.phase", self.start + phase)
            stride = self._get(raw, key, "stride", int, count)
            if stride < 1:
                raise ScenarioError(f"{key}.stride: must be >= 1")
            return Rule(key=key, kind=kind, views=views, start=start, until=until, pool=pool,
                        count=count, period=period, phase=phase, stride=stride, epoch=self.start)
        self._unknown(raw, key, common | {"pool", "to_pool", "count", "step"})
        if start is None:
            raise ScenarioError(f"{key}.from: a migration needs a start")
        pool = self._pool(raw, key, "pool")
        to_pool = self._pool(raw, key, "to_pool")
        count = self._get(raw, key, "count", int, min(len(pool), len(to_pool)))
        if not 1 <= count <= min(len(pool), len(to_pool)):
            raise ScenarioError(f"{key}.count: must be between 1 and the smaller pool's size")
        if set(pool[:count]) & set(to_pool[:count]):
            raise ScenarioError(f"{key}.to_pool: shares addresses with pool")
        step = self._duration(raw, key, "step")
        self._multiple(f"{key}.step", step, self.grid, "scenario.grid")
        return Rule(key=key, kind=kind, views=views, start=start, until=until, pool=pool,
                    to_pool=to_pool, count=count, step=step)

    def _withdrawal(self, raw: Any, key: str) -> Withdrawal:
        raw = self._table(raw, key)
        self._unknown(raw, key, {"address", "views", "from", "until"})
        start, until = self._instant(raw, key, "from"), self._instant(raw, key, "until")
        if start is None or until is None:
            raise ScenarioError(f"{key}: needs both from and until")
        self._off_grid(f"{key}.from", start)
        self._off_grid(f"{key}.until", until)
        if until <= start:
            raise ScenarioError(f"{key}.until: must be after {key}.from")
        return Withdrawal(key=key, address=self._address(f"{key}.address", raw.get("address")),
                          views=self._views_of(raw, key), start=start, until=until)

    def _resolvers(self, raw: Any) -> tuple[Resolver, ...]:
        if not isinstance(raw, list) or not raw:
            raise ScenarioError("resolvers: must be a non-empty array of tables ([[resolvers]])")
        out: list[Resolver] = []
        for i, item in enumerate(raw):
            key = f"resolvers[{i}]"
            item = self._table(item, key)
            self._unknown(item, key, {"name", "software", "view", "client_subnet", "cache",
                                      "stale_ttl", "faults", "provider", "ignored_subnet",
                                      "client_address_ecs"})
            name = self._get(item, key, "name", str)
            if any(r.name == name for r in out):
                raise ScenarioError(f"{key}.name: duplicate resolver {name!r}")
            software = self._get(item, key, "software", str, "unbound")
            if software not in SOFTWARE:
                raise ScenarioError(f"{key}.software: must be one of {', '.join(SOFTWARE)}")
            view = self._get(item, key, "view", str)
            if view not in self.view_names:
                raise ScenarioError(f"{key}.view: unknown view {view!r}")
            subnet = None
            if "client_subnet" in item:
                if software != "pdns-recursor":
                    raise ScenarioError(
                        f"{key}.client_subnet: use software = \"pdns-recursor\" (kresd does not"
                        " forward ECS; unbound's subnetcache keeps TTL-0 answers for the rest of"
                        " the real second, hours of scenario time under acceleration)")
                try:
                    subnet = ipaddress.IPv4Network(self._get(item, key, "client_subnet", str))
                except ValueError as exc:
                    raise ScenarioError(f"{key}.client_subnet: {exc}") from exc
            cache = self._get(item, key, "cache", str, "default")
            if cache not in CACHE_MODES:
                raise ScenarioError(f"{key}.cache: must be one of {', '.join(CACHE_MODES)}")
            if cache != "default" and software != "unbound":
                raise ScenarioError(f"{key}.cache: cache modes other than default need unbound")
            stale_ttl = self._duration(item, key, "stale_ttl", "1d")
            faults = self._faults(item["faults"], f"{key}.faults") if "faults" in item else None
            ignored = None
            if "ignored_subnet" in item:
                if "client_subnet" in item:
                    raise ScenarioError(f"{key}.ignored_subnet: not with client_subnet")
                try:
                    ignored = ipaddress.IPv4Network(self._get(item, key, "ignored_subnet", str))
                except ValueError as exc:
                    raise ScenarioError(f"{key}.ignored_subnet: {exc}") from exc
            out.append(Resolver(name=name, software=software, view=view, client_subnet=subnet,
                                cache=cache, stale_ttl=stale_ttl, faults=faults,
                                provider=self._get(item, key, "provider", str, "lab"),
                                ignored_subnet=ignored,
                                client_address_ecs=client_address_ecs(self, item, key, software)))
        return tuple(out)

    def _faults(self, raw: Any, key: str) -> Faults:
        raw = self._table(raw, key)
        self._unknown(raw, key, {"drop", "slot", "phase", "servfail_every",
                                 "servfail_probability", "servfail_length"})
        slot = self._duration(raw, key, "slot", self.grid)
        self._multiple(f"{key}.slot", slot, self.grid, "scenario.grid")
        phase = self._duration(raw, key, "phase", self.grid / 2)
        self._off_grid(f"{key}.phase", self.start + phase)
        drop = float(self._get(raw, key, "drop", (int, float), 0.0))
        if not 0 <= drop <= 1:
            raise ScenarioError(f"{key}.drop: must be a share between 0 and 1")
        every = self._duration(raw, key, "servfail_every", 0)
        prob = float(self._get(raw, key, "servfail_probability", (int, float), 1.0 if every else 0))
        length = self._duration(raw, key, "servfail_length", slot if every else 0)
        if every:
            self._multiple(f"{key}.servfail_every", every, slot, f"{key}.slot")
            self._multiple(f"{key}.servfail_length", length, slot, f"{key}.slot")
            if length > every:
                raise ScenarioError(f"{key}.servfail_length: longer than servfail_every")
            if not 0 <= prob <= 1:
                raise ScenarioError(f"{key}.servfail_probability: must be between 0 and 1")
        return Faults(drop=drop, slot=slot, phase=phase, servfail_every=every,
                      servfail_probability=prob, servfail_length=length)

    def _edge_changes(self, raw: Any, targets: tuple[Target, ...]) -> tuple[EdgeChange, ...]:
        """``[[edges.changes]]``: address, at (off the grid), behaviour."""
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise ScenarioError("edges.changes: must be an array of tables ([[edges.changes]])")
        known = {a for t in targets for r in t.rules for a in (*r.addresses, *r.pool, *r.to_pool)}
        out = []
        for i, item in enumerate(raw):
            key = f"edges.changes[{i}]"
            item = self._table(item, key)
            self._unknown(item, key, {"address", "at", "behaviour"})
            address = self._address(f"{key}.address", self._get(item, key, "address", str))
            if address not in known:
                raise ScenarioError(f"{key}.address: {address} is never handed out by any rule")
            at = self._instant(item, key, "at")
            if at is None:
                raise ScenarioError(f"{key}.at: required (an offset like \"3h7m30s\")")
            self._off_grid(f"{key}.at", at)
            behaviour = self._get(item, key, "behaviour", str)
            if behaviour not in EDGE_BEHAVIOURS:
                raise ScenarioError(f"{key}.behaviour: must be one of {', '.join(EDGE_BEHAVIOURS)}")
            out.append(EdgeChange(address, at, behaviour))
        return tuple(sorted(out, key=lambda c: (c.at, c.address)))

    def _edges(self, raw: Any, targets: tuple[Target, ...]) -> dict[str, str]:
        raw = self._table(raw, "edges")
        self._unknown(raw, "edges", set(EDGE_BEHAVIOURS) - {"ok"})
        known = {a for t in targets for r in t.rules for a in (*r.addresses, *r.pool, *r.to_pool)}
        out: dict[str, str] = {}
        for behaviour, items in raw.items():
            for a in self._addresses(f"edges.{behaviour}", items):
                if a not in known:
                    raise ScenarioError(f"edges.{behaviour}: {a} is never handed out by any rule")
                if a in out:
                    raise ScenarioError(f"edges.{behaviour}: {a} already has behaviour {out[a]}")
                out[a] = behaviour
        return out


def _network_prefix(text: str, key: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An edge network: inside 127.0.0.0/8 (not the DNS plan) or, dual-stack, inside fd00::/8."""
    try:
        prefix = ipaddress.ip_network(text)
    except ValueError as exc:
        raise ScenarioError(f"{key}.prefix: {exc}") from exc
    if prefix.version == 6:
        if not prefix.subnet_of(IPV6_LAB_SPACE):
            raise ScenarioError(f"{key}.prefix: IPv6 edge networks must lie in {IPV6_LAB_SPACE}")
        return prefix
    if not prefix.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
        raise ScenarioError(f"{key}.prefix: must lie in 127.0.0.0/8")
    if prefix.subnet_of(ipaddress.IPv4Network("127.53.0.0/16")):
        raise ScenarioError(f"{key}.prefix: 127.53.0.0/16 is the lab's DNS address plan")
    return prefix
