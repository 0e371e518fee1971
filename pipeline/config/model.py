"""What a configuration is: the frozen dataclasses, their bounds, the error and the secret.

The dataclasses hold the one copy of every default; the section parsers read them through
``default`` instead of repeating the numbers, so a default changes in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.config.publish import Publish

TRANSPORTS = ("udp", "tcp", "dot", "doh")
DEFAULT_PORTS = {"dot": 853, "doh": 443}  # by transport; the others use Resolver.port
RECORD_TYPES = ("A", "AAAA")
SINK_TYPES = ("ndjson", "stdout", "elasticsearch")

# Bounds of the numbers a cycle depends on. The interval is in scenario seconds (the lab's 15m grid
# at speed 3600 is 0.25 s real); below these a "1ms" typo turns the probe into a flood.
MIN_INTERVAL_S = 1.0  # scenario seconds between two cycles
MIN_REAL_INTERVAL_S = 0.1  # real seconds between two cycles (interval / clock.speed)
MAX_SPEED = 86400.0  # one scenario day per real second
MAX_PROBE_TIMEOUT_S = 60.0  # timeouts.dns / connect / tls / http
MAX_ES_TIMEOUT_S = 300.0  # elasticsearch.request_timeout


# ECS observer.geo.* keys that hold a string, each mapped in edgewatch-base@mappings: any other key
# would make every check document fail the strict mapping, so the config refuses it up front.
OBSERVER_GEO_KEYS = ("name", "city_name", "continent_code", "continent_name", "country_iso_code",
                     "country_name", "region_iso_code", "region_name", "postal_code", "timezone")


class ConfigError(ValueError):
    """Raised with every problem found; ``problems`` holds (key, reason) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        problems = list(dict.fromkeys(problems))  # one override of a list section: one line
        self.problems = problems
        lines = "\n".join(f"  {key}: {reason}" for key, reason in problems)
        super().__init__(f"invalid configuration:\n{lines}")


class Secret:
    """A credential that prints as ``***`` wherever it ends up."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Target:
    name: str
    record_types: tuple[str, ...] = ("A",)
    port: int = 443
    sni: str | None = None
    http_path: str | None = None

    @property
    def server_name(self) -> str:
        return self.sni or self.name


@dataclass(frozen=True)
class Resolver:
    name: str
    address: str
    port: int = 53
    transport: str = "udp"
    provider: str = ""
    client_subnet: str | None = None
    server_name: str | None = None  # DoT/DoH: the name to verify
    url: str | None = None  # DoH endpoint


@dataclass(frozen=True)
class Schedule:
    interval_s: float = 900.0
    jitter_s: float = 0.0
    misfire_grace_s: float = 300.0


@dataclass(frozen=True)
class Clock:
    """Scenario clock: scenario_now = start + (real_now - anchor) * speed."""

    start: datetime
    anchor: float
    speed: float = 1.0


@dataclass(frozen=True)
class Timeouts:
    dns: float = 2.0
    connect: float = 3.0
    tls: float = 3.0
    http: float = 5.0


@dataclass(frozen=True)
class Limits:
    concurrency: int = 64
    # Addresses of one answer that get a TCP/TLS check; the rest are recorded but not connected
    # to, so one hostile answer of 254 addresses cannot stretch a cycle past its budget.
    max_addresses: int = 32


@dataclass(frozen=True)
class Afterlife:
    """``[afterlife]``: how long a retired address keeps being checked (0: off, the default).

    A run that ended is an allowlist entry gone stale; checking its address on for a while says
    whether such an entry still reaches the API, reaches nothing, or reaches someone else.
    """

    duration_s: float = 0.0
    # Retired addresses checked per cycle at most (the most recently retired first), so a CDN
    # that rotates through a large pool cannot turn the afterlife into the cycle's main cost.
    max_addresses: int = 64

    @property
    def enabled(self) -> bool:
        return self.duration_s > 0


@dataclass(frozen=True)
class ElasticsearchSettings:
    url: str
    api_key: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None
    verify_certs: bool = True
    namespace: str = "default"
    request_timeout: float = 30.0
    bulk_max_docs: int = 500
    bulk_max_bytes: int = 5 * 2**20
    flush_interval_s: float = 5.0
    spool_dir: Path = Path("var/spool")
    spool_max_bytes: int = 1 << 30
    dead_letter_dir: Path = Path("var/dead-letter")
    # Replicas of the check data stream and the runs index; None ("auto"): setup gives 0 on a
    # one-data-node cluster, 1 on two or more (docs/ELASTICSEARCH.md, "Replicas").
    replicas: int | None = None


@dataclass(frozen=True)
class Allowlist:
    """A deployed allowlist: its name (in documents and metrics) and its file."""

    name: str
    file: Path


@dataclass(frozen=True)
class Config:
    observer_name: str
    observer_geo: dict[str, str]
    targets: tuple[Target, ...]
    resolvers: tuple[Resolver, ...]
    schedule: Schedule = Schedule()
    clock: Clock | None = None
    timeouts: Timeouts = Timeouts()
    limits: Limits = Limits()
    tls_ca_file: Path | None = None
    rdns_resolver: tuple[str, int] | None = None
    rdns_enabled: bool = True
    netinfo_table: Path | None = None
    state_dir: Path = Path("var/state")
    store_dir: Path = Path("var/data")
    sinks: tuple[str, ...] = ("ndjson",)
    elasticsearch: ElasticsearchSettings | None = None
    keep_raw_answers: bool = False
    event_loop: str = "asyncio"  # [runtime] event_loop: asyncio | auto | uvloop
    firewall_models: tuple[Any, ...] = ()  # pipeline.config.firewall.FirewallModel
    publish: Publish | None = None
    allowlists: tuple[Allowlist, ...] = ()
    metrics_listen: tuple[str, int] | None = None  # [metrics] listen: where /metrics is served
    afterlife: Afterlife = Afterlife()
    source_address: str | None = None  # [probe] source_address: where probes send from
    source: Path | None = field(default=None, compare=False)


def default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls``: the one place a default is written."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            break
    raise KeyError(f"{cls.__name__}.{name} has no default")
