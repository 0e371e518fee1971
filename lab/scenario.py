"""Scenario files: what the simulated CDN does, when, and to whom.

A scenario is plain TOML (stdlib tomllib) so it can be read and reviewed like the study's notes.
Loading validates everything up front and names the offending key ("targets[0].rules[2].period:
..."), because a typo in a 14-day schedule otherwise shows up as a puzzling number in a report.

One rule the loader enforces on purpose: every instant at which an answer or a fault window can
change must sit at least `scenario.guard` away from the poll grid (`scenario.grid`, anchored at
`scenario.start`). A poller on the grid with a little latency therefore never straddles a change,
which is what lets the ground truth be exact.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lab.timeparse import parse_duration, to_epoch

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

SOFTWARE = ("unbound", "kresd", "pdns-recursor")
CACHE_MODES = ("default", "off", "prefetch", "serve-expired")
EDGE_BEHAVIOURS = ("ok", "blackhole", "refuse", "wrong_name", "expired", "tls_abort")
#: what a client connecting to an edge sees, per behaviour (None: TCP, TLS and HTTP succeed)
EDGE_OUTCOMES: dict[str, str | None] = {
    "ok": None,
    "blackhole": "tcp.timeout",
    "refuse": "tcp.refused",
    "wrong_name": "tls.verify",
    "expired": "tls.verify",
    "tls_abort": "tls.handshake",
}
RULE_KINDS = ("stable", "rotate", "migrate")


class ScenarioError(ValueError):
    """A scenario file is invalid; the message starts with the dotted key that is wrong."""


@dataclass(frozen=True)
class Network:
    """One edge network (stands for an ASN's announced prefix)."""

    prefix: ipaddress.IPv4Network
    asn: int
    as_name: str
    country: str
    ptr: str  # template, "{dashed}" -> 127-60-0-5, "{ip}" -> 127.60.0.5


@dataclass(frozen=True)
class View:
    """A population of askers the authoritative server answers alike (a region / a resolver)."""

    name: str
    client_subnets: tuple[ipaddress.IPv4Network, ...] = ()


@dataclass(frozen=True)
class Rule:
    """One piece of the rotation schedule; the answer is the union of all active rules."""

    key: str
    kind: str
    views: frozenset[str] | None
    start: float | None
    until: float | None
    addresses: tuple[str, ...] = ()
    pool: tuple[str, ...] = ()
    to_pool: tuple[str, ...] = ()
    count: int = 0
    period: float = 0.0
    phase: float = 0.0
    stride: int = 0
    step: float = 0.0
    epoch: float = 0.0  # rotation slots are counted from here (the scenario start)


@dataclass(frozen=True)
class Withdrawal:
    """An address removed from the answers of some views for a while (drives run reuse)."""

    key: str
    address: str
    views: frozenset[str] | None
    start: float
    until: float


@dataclass(frozen=True)
class Target:
    """A hostname the observer asks for, its CNAME chain and its rotation rules."""

    name: str
    chain: tuple[str, ...]  # full chain, chain[0] == name, chain[-1] owns the A records
    ttl: int
    cname_ttl: int
    rules: tuple[Rule, ...]
    withdrawals: tuple[Withdrawal, ...]


@dataclass(frozen=True)
class Faults:
    """Deterministic misbehaviour injected in front of one resolver, in scenario time."""

    drop: float = 0.0  # share of `slot`-long windows in which every query is dropped
    slot: float = 900.0
    phase: float = 450.0
    servfail_every: float = 0.0  # 0 = no SERVFAIL bursts
    servfail_probability: float = 0.0
    servfail_length: float = 0.0


@dataclass(frozen=True)
class Resolver:
    """One recursive resolver of the study, played by a real daemon (plus a shim for faults)."""

    name: str
    software: str
    view: str
    client_subnet: ipaddress.IPv4Network | None
    cache: str
    stale_ttl: float  # scenario seconds an expired answer may still be served (serve-expired)
    faults: Faults | None


@dataclass(frozen=True)
class Scenario:
    """A whole validated scenario; times are scenario epoch seconds (floats)."""

    name: str
    description: str
    path: Path
    start: float
    duration: float
    grid: float
    guard: float
    seed: int
    origin: str
    negative_ttl: int
    networks: tuple[Network, ...]
    pools: dict[str, tuple[str, ...]]
    views: tuple[View, ...]
    default_view: str
    targets: tuple[Target, ...]
    resolvers: tuple[Resolver, ...]
    edge_behaviour: dict[str, str] = field(default_factory=dict)
    wrong_name: str = "wrong-name.lab.test"

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def start_dt(self) -> datetime:
        from lab.timeparse import from_epoch

        return from_epoch(self.start)

    def target(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(name)

    def resolver(self, name: str) -> Resolver:
        for r in self.resolvers:
            if r.name == name:
                return r
        raise KeyError(name)

    def edge_addresses(self) -> tuple[str, ...]:
        """Every address any rule can hand out, sorted numerically."""
        seen: set[str] = set()
        for target in self.targets:
            for rule in target.rules:
                seen.update(rule.addresses, rule.pool, rule.to_pool)
        return tuple(sorted(seen, key=lambda a: int(ipaddress.IPv4Address(a))))

    def network_of(self, address: str) -> Network | None:
        ip = ipaddress.IPv4Address(address)
        for net in self.networks:
            if ip in net.prefix:
                return net
        return None


def resolve_path(name_or_path: str | Path) -> Path:
    """A shipped scenario name ("quick") or a path to a .toml file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p.resolve()
    shipped = SCENARIO_DIR / f"{name_or_path}.toml"
    if shipped.exists():
        return shipped
    names = ", ".join(sorted(x.stem for x in SCENARIO_DIR.glob("*.toml")))
    raise ScenarioError(f"scenario {name_or_path!r} not found (shipped: {names})")


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises ScenarioError naming the bad key."""
    path = resolve_path(name_or_path)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path.name}: not valid TOML: {exc}") from exc
    return _Loader(path).scenario(raw)


class _Loader:
    """Walks the TOML document keeping the dotted key path for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = 0.0
        self.grid = 900.0
        self.guard = 0.0
        self.pools: dict[str, tuple[str, ...]] = {}
        self.view_names: set[str] = set()

    # -- small typed getters -------------------------------------------------------------
    @staticmethod
    def _table(raw: Any, key: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise ScenarioError(f"{key}: must be a table")
        return raw

    @staticmethod
    def _unknown(raw: dict[str, Any], key: str, allowed: set[str]) -> None:
        extra = sorted(set(raw) - allowed)
        if extra:
            prefix = f"{key}." if key else ""
            allowed_text = ", ".join(sorted(allowed))
            raise ScenarioError(f"{prefix}{extra[0]}: unknown key (allowed: {allowed_text})")

    @staticmethod
    def _get(raw: dict[str, Any], key: str, name: str, typ: type | tuple[type, ...],
             default: Any = ...) -> Any:
        if name not in raw:
            if default is ...:
                raise ScenarioError(f"{key}.{name}: missing")
            return default
        value = raw[name]
        if isinstance(value, bool) and typ is not bool:
            raise ScenarioError(f"{key}.{name}: must be {_tname(typ)}, got {value!r}")
        if not isinstance(value, typ):
            raise ScenarioError(f"{key}.{name}: must be {_tname(typ)}, got {value!r}")
        return value

    def _duration(self, raw: dict[str, Any], key: str, name: str, default: Any = ...) -> float:
        value = self._get(raw, key, name, (str, int, float), default)
        if value is None:
            return None  # type: ignore[return-value]
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ScenarioError(f"{key}.{name}: {exc}") from exc

    def _instant(self, raw: dict[str, Any], key: str, name: str) -> float | None:
        """An instant: a TOML datetime, or a duration offset from scenario.start ("3d7m30s")."""
        if name not in raw:
            return None
        value = raw[name]
        if isinstance(value, datetime):
            return to_epoch(value)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                return self.start + parse_duration(value)
            except ValueError as exc:
                raise ScenarioError(f"{key}.{name}: {exc}") from exc
        raise ScenarioError(f"{key}.{name}: must be a datetime or an offset like \"3d7m30s\"")

    def _off_grid(self, key: str, instant: float) -> None:
        offset = (instant - self.start) % self.grid
        if offset < self.guard - 1e-9 or offset > self.grid - self.guard + 1e-9:
            raise ScenarioError(
                f"{key}: change instant is {offset:g}s from the {self.grid:g}s poll grid; it must"
                f" be"
                f" at least scenario.guard={self.guard:g}s away (e.g. at hh:07:30)"
            )

    def _multiple(self, key: str, value: float, unit: float, unit_name: str) -> None:
        if value <= 0 or abs(value / unit - round(value / unit)) > 1e-9:
            raise ScenarioError(f"{key}: must be a positive multiple of {unit_name} ({unit:g}s)")

    def _address(self, key: str, text: Any) -> str:
        if not isinstance(text, str):
            raise ScenarioError(f"{key}: must be an IPv4 address string")
        try:
            ip = ipaddress.IPv4Address(text)
        except ValueError as exc:
            raise ScenarioError(f"{key}: {exc}") from exc
        if not ip.is_loopback:
            raise ScenarioError(f"{key}: {text} is not in 127.0.0.0/8 (the lab stays on loopback)")
        return str(ip)

    def _addresses(self, key: str, items: Any) -> tuple[str, ...]:
        """A list of addresses and "a-b" ranges (inclusive), order kept."""
        if not isinstance(items, list) or not items:
            raise ScenarioError(f"{key}: must be a non-empty list of addresses or ranges")
        out: list[str] = []
        for i, item in enumerate(items):
            k = f"{key}[{i}]"
            if isinstance(item, str) and "-" in item:
                lo_s, hi_s = item.split("-", 1)
                lo = ipaddress.IPv4Address(self._address(k, lo_s.strip()))
                hi = ipaddress.IPv4Address(self._address(k, hi_s.strip()))
                if hi < lo or int(hi) - int(lo) > 4096:
                    raise ScenarioError(f"{k}: bad range {item!r}")
                out.extend(str(ipaddress.IPv4Address(n)) for n in range(int(lo), int(hi) + 1))
            else:
                out.append(self._address(k, item))
        if len(set(out)) != len(out):
            raise ScenarioError(f"{key}: duplicate addresses")
        return tuple(out)

    def _views_of(self, raw: dict[str, Any], key: str) -> frozenset[str] | None:
        if "views" not in raw:
            return None
        views = raw["views"]
        if not isinstance(views, list) or not views or not all(isinstance(v, str) for v in views):
            raise ScenarioError(f"{key}.views: must be a non-empty list of view names")
        for v in views:
            if v not in self.view_names:
                raise ScenarioError(f"{key}.views: unknown view {v!r}")
        return frozenset(views)

    def _pool(self, raw: dict[str, Any], key: str, name: str) -> tuple[str, ...]:
        value = self._get(raw, key, name, (str, list))
        if isinstance(value, str):
            if value not in self.pools:
                raise ScenarioError(f"{key}.{name}: unknown pool {value!r}")
            return self.pools[value]
        return self._addresses(f"{key}.{name}", value)

    # -- sections ------------------------------------------------------------------------
    def scenario(self, raw: dict[str, Any]) -> Scenario:
        self._unknown(raw, "", {"scenario", "zone", "networks", "pools", "views", "targets",
                                "resolvers", "edges"})
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
        edges = self._edges(raw.get("edges", {}), targets)
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
            wrong_name=self._get(zone, "zone", "wrong_name", str, f"wrong-name.{origin}"),
        )
        _check_nonempty_answers(scenario)
        return scenario

    def _networks(self, raw: Any) -> tuple[Network, ...]:
        if not isinstance(raw, list) or not raw:
            raise ScenarioError("networks: must be a non-empty array of tables ([[networks]])")
        out = []
        for i, item in enumerate(raw):
            key = f"networks[{i}]"
            item = self._table(item, key)
            self._unknown(item, key, {"prefix", "asn", "as_name", "country", "ptr"})
            try:
                prefix = ipaddress.IPv4Network(self._get(item, key, "prefix", str))
            except ValueError as exc:
                raise ScenarioError(f"{key}.prefix: {exc}") from exc
            if not prefix.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
                raise ScenarioError(f"{key}.prefix: must lie in 127.0.0.0/8")
            if prefix.subnet_of(ipaddress.IPv4Network("127.53.0.0/16")):
                raise ScenarioError(f"{key}.prefix: 127.53.0.0/16 is the lab's DNS address plan")
            for other in out:
                if prefix.overlaps(other.prefix):
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
                if not any(ipaddress.IPv4Address(a) in n.prefix for n in networks):
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
                                      "stale_ttl", "faults"})
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
            out.append(Resolver(name=name, software=software, view=view, client_subnet=subnet,
                                cache=cache, stale_ttl=stale_ttl, faults=faults))
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


def _tname(typ: type | tuple[type, ...]) -> str:
    if isinstance(typ, tuple):
        return " or ".join(t.__name__ for t in typ)
    return typ.__name__


def _check_nonempty_answers(scenario: Scenario) -> None:
    """Every target must answer every view with at least one address at every grid point."""
    from lab.rotation import addresses_at

    t = scenario.start
    while t < scenario.end:
        for target in scenario.targets:
            for view in scenario.views:
                if not addresses_at(target, view.name, t):
                    raise ScenarioError(
                        f"targets.{target.name}: view {view.name!r} gets an empty answer at"
                        f" scenario offset {t - scenario.start:g}s; add a rule covering it"
                    )
        t += scenario.grid
