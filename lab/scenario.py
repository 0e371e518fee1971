"""Scenario files: what the simulated CDN does, when, and to whom.

A scenario is plain TOML (stdlib tomllib) so it can be read and reviewed like the study's notes.
Loading validates everything up front and names the offending key ("targets[0].rules[2].period:
..."), because a typo in a 14-day schedule otherwise shows up as a puzzling number in a report.

One rule the loader enforces on purpose: every instant at which an answer or a fault window can
change must sit at least `scenario.guard` away from the poll grid (`scenario.grid`, anchored at
`scenario.start`). A poller on the grid with a little latency therefore never straddles a change,
which is what lets the ground truth be exact.

This module is the scenario's model (the classes a loaded scenario is made of) and its entry
point, ``load_scenario``; reading and validating the TOML is ``scenario_load`` (the sections)
on top of ``scenario_fields`` (typed, key-naming getters).
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

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
#: where a dual-stack scenario's IPv6 edges live: unique-local space, only ever inside the
#: lab's own network namespace
IPV6_LAB_SPACE = ipaddress.IPv6Network("fd00::/8")
RECORD_TYPES = {4: "A", 6: "AAAA"}


def address_key(address: str) -> tuple[int, int]:
    """Sort key: IPv4 before IPv6, then numerically."""
    ip = ipaddress.ip_address(address)
    return (ip.version, int(ip))


def family(address: str) -> int:
    """4 or 6."""
    return ipaddress.ip_address(address).version


def of_type(addresses: frozenset[str] | set[str], rdtype: str) -> frozenset[str]:
    """The addresses an A (IPv4) or AAAA (IPv6) RRset carries."""
    want = 6 if rdtype.upper() == "AAAA" else 4
    return frozenset(a for a in addresses if ipaddress.ip_address(a).version == want)


class ScenarioError(ValueError):
    """A scenario file is invalid; the message starts with the dotted key that is wrong."""


@dataclass(frozen=True)
class Network:
    """One edge network (stands for an ASN's announced prefix)."""

    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network
    asn: int
    as_name: str
    country: str
    ptr: str  # template, "{dashed}" -> 127-60-0-5 (fd00-60--10), "{ip}" -> 127.60.0.5


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
class EdgeChange:
    """From ``at`` on, ``address`` behaves as ``behaviour`` (a retired edge that starts refusing
    or is handed to another customer with another certificate)."""

    address: str
    at: float
    behaviour: str


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
    provider: str = "lab"  # the observer config's provider (ECS evidence compares within one)
    # The observer sends this client subnet, but the daemon does not forward it (ECS ignored):
    # the answers follow the resolver's own view.
    ignored_subnet: ipaddress.IPv4Network | None = None
    # pdns-recursor sends the asking client's own address (its /24, ``ecs-ipv4-bits``) as ECS:
    # the view then depends on where the observer is, as a resolver's views by source do.
    client_address_ecs: bool = False


@dataclass(frozen=True)
class Observer:
    """One probe of a many-observer scenario: its name, the loopback address it sends from
    (``[probe] source_address``) and the ``observer.geo.name`` its config carries."""

    name: str
    source: ipaddress.IPv4Address
    geo: str


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
    edge_changes: tuple[EdgeChange, ...] = ()  # ordered by time
    observers: tuple[Observer, ...] = ()  # [[observers]]: probes in different places

    def observer(self, name: str) -> Observer:
        for o in self.observers:
            if o.name == name:
                return o
        raise KeyError(name)

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
        return tuple(sorted(seen, key=address_key))

    @property
    def has_ipv6(self) -> bool:
        """A dual-stack scenario: it hands out IPv6 edges (so the lab needs a namespace)."""
        return any(family(a) == 6 for a in self.edge_addresses())

    def record_types(self, target: Target | str) -> tuple[str, ...]:
        """What an observer asks for a target: A, plus AAAA when any rule hands out IPv6."""
        tg = target if isinstance(target, Target) else self.target(target)
        fams = {family(a) for r in tg.rules for a in (*r.addresses, *r.pool, *r.to_pool)}
        return tuple(RECORD_TYPES[f] for f in sorted(fams))

    def behaviour_at(self, address: str, t: float) -> str:
        """The edge behaviour of ``address`` at scenario time ``t`` (changes included)."""
        behaviour = self.edge_behaviour.get(address, "ok")
        for change in self.edge_changes:
            if change.address == address and change.at <= t:
                behaviour = change.behaviour
        return behaviour

    def network_of(self, address: str) -> Network | None:
        ip = ipaddress.ip_address(address)
        for net in self.networks:
            if ip.version == net.prefix.version and ip in net.prefix:
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
    from lab.scenario_load import ScenarioLoader  # the loader builds these classes

    return ScenarioLoader(path).scenario(raw)
