"""One TOML file plus environment overrides, validated before anything runs.

Every problem is reported with the dotted key it concerns and why, all at once, so a person fixes
a config in one pass. Secrets (Elasticsearch API key, password) are read from the environment or
from files named in the config, are kept in ``Secret`` wrappers whose repr is masked, and never
reach a log line.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TRANSPORTS = ("udp", "tcp", "dot", "doh")
RECORD_TYPES = ("A", "AAAA")
SINK_TYPES = ("ndjson", "stdout", "elasticsearch")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class ConfigError(ValueError):
    """Raised with every problem found; ``problems`` holds (key, reason) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
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
    dns_retries: int = 0
    # Addresses of one answer that get a TCP/TLS check; the rest are recorded but not connected
    # to, so one hostile answer of 254 addresses cannot stretch a cycle past its budget.
    max_addresses: int = 32


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
    source: Path | None = field(default=None, compare=False)


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"1.5h"``, ``"250ms"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15m, 30s or 250ms")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration such as 15m, 30s or 250ms")


class _Reader:
    """Walks the parsed TOML, collecting problems instead of stopping at the first."""

    def __init__(self, data: Mapping[str, Any], base: Path) -> None:
        self.data = data
        self.base = base
        self.problems: list[tuple[str, str]] = []

    def fail(self, key: str, reason: str) -> None:
        self.problems.append((key, reason))

    def table(self, key: str) -> Mapping[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            self.fail(key, "must be a table")
            return {}
        return value

    def get(self, table: Mapping[str, Any], key: str, prefix: str, kind: type | tuple,
            default: Any = None) -> Any:
        if key not in table:
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.fail(f"{prefix}{key}", f"must be {names}, got {type(value).__name__}")
            return default
        return value

    def duration(self, table: Mapping[str, Any], key: str, prefix: str, default: float) -> float:
        if key not in table:
            return default
        try:
            return parse_duration(table[key])
        except ValueError as exc:
            self.fail(f"{prefix}{key}", str(exc))
            return default

    def path(self, value: str | None) -> Path | None:
        if value is None:
            return None
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.base / p)

    def unknown(self, table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                expected = ", ".join(sorted(allowed))
                self.fail(f"{prefix}{key}", f"unknown key (expected one of: {expected})")


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """``EDGEWATCH_<SECTION>__<KEY>=value`` overrides ``[section] key``; plus ES_* shortcuts."""
    for name, raw in env.items():
        if not name.startswith("EDGEWATCH_") or "__" not in name:
            continue
        section, _, key = name[len("EDGEWATCH_"):].lower().partition("__")
        if section in ("targets", "resolvers"):
            continue
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        data.setdefault(section, {})[key] = value
    if env.get("ES_URL"):
        data.setdefault("elasticsearch", {})["url"] = env["ES_URL"]


def _secret(r: _Reader, table: Mapping[str, Any], key: str, env: Mapping[str, str],
            env_names: tuple[str, ...]) -> Secret | None:
    for name in env_names:
        if env.get(name):
            return Secret(env[name])
    file_key = f"{key}_file"
    if file_key in table:
        path = r.path(r.get(table, file_key, "elasticsearch.", str))
        if path is None:
            return None
        try:
            return Secret(path.read_text().strip())
        except OSError as exc:
            r.fail(f"elasticsearch.{file_key}", f"cannot read {path}: {exc.strerror}")
            return None
    if key in table:
        r.fail(f"elasticsearch.{key}",
               f"secrets are not accepted inline; use {file_key} or the environment "
               f"({' / '.join(env_names)})")
    return None


def _parse_es(r: _Reader, env: Mapping[str, str]) -> ElasticsearchSettings | None:
    t = r.table("elasticsearch")
    if not t:
        return None
    p = "elasticsearch."
    r.unknown(t, {"url", "api_key", "api_key_file", "username", "password", "password_file",
                  "ca_file", "verify_certs", "namespace", "request_timeout", "bulk_max_docs",
                  "bulk_max_bytes", "flush_interval", "spool_dir", "spool_max_bytes",
                  "dead_letter_dir"}, p)
    url = r.get(t, "url", p, str)
    if not url:
        r.fail(f"{p}url", "required when [elasticsearch] is present (or set ES_URL)")
        return None
    if not re.match(r"^https?://[^/\s]+", url):
        r.fail(f"{p}url", f"{url!r} is not an http(s) URL")
    namespace = r.get(t, "namespace", p, str, "default")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.]*", namespace or "x") or "-" in namespace:
        r.fail(f"{p}namespace", "lower-case letters, digits, '_' and '.' only (no '-')")
    username = env.get("ES_USERNAME") or r.get(t, "username", p, str)
    return ElasticsearchSettings(
        url=url,
        api_key=_secret(r, t, "api_key", env, ("ES_API_KEY", "EDGEWATCH_ES_API_KEY")),
        username=username,
        password=_secret(r, t, "password", env, ("ES_PASSWORD", "EDGEWATCH_ES_PASSWORD")),
        ca_file=r.path(env.get("ES_CA_FILE") or r.get(t, "ca_file", p, str)),
        verify_certs=r.get(t, "verify_certs", p, bool, True),
        namespace=namespace,
        request_timeout=r.duration(t, "request_timeout", p, 30.0),
        bulk_max_docs=r.get(t, "bulk_max_docs", p, int, 500),
        bulk_max_bytes=r.get(t, "bulk_max_bytes", p, int, 5 * 2**20),
        flush_interval_s=r.duration(t, "flush_interval", p, 5.0),
        spool_dir=r.path(r.get(t, "spool_dir", p, str, "var/spool")) or Path("var/spool"),
        spool_max_bytes=r.get(t, "spool_max_bytes", p, int, 1 << 30),
        dead_letter_dir=r.path(r.get(t, "dead_letter_dir", p, str, "var/dead-letter"))
        or Path("var/dead-letter"),
    )


def parse_host_port(value: str, default_port: int = 53) -> tuple[str, int]:
    """``ADDRESS``, ``ADDRESS:PORT`` or ``[IPv6]:PORT``; ValueError when it is neither."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
    elif value.count(":") == 1:
        host, _, port_s = value.partition(":")
        port = int(port_s)
    else:
        host, port = value, default_port
    ipaddress.ip_address(host)
    return host, port


def _parse_targets(r: _Reader) -> tuple[Target, ...]:
    raw = r.data.get("targets", [])
    if not isinstance(raw, list) or not raw:
        r.fail("targets", "at least one [[targets]] entry is required")
        return ()
    out = []
    for i, t in enumerate(raw):
        p = f"targets[{i}]."
        if not isinstance(t, Mapping):
            r.fail(f"targets[{i}]", "must be a table")
            continue
        r.unknown(t, {"name", "record_types", "port", "sni", "http_path"}, p)
        name = r.get(t, "name", p, str)
        if not name or not re.fullmatch(r"[A-Za-z0-9_.-]+\.?", name):
            r.fail(f"{p}name", "required: a hostname such as acme-v02.api.letsencrypt.org")
            continue
        types = r.get(t, "record_types", p, list, ["A"])
        bad = [x for x in types if x not in RECORD_TYPES]
        if bad or not types:
            r.fail(f"{p}record_types", f"must be a non-empty list of {RECORD_TYPES}, got {types}")
        port = r.get(t, "port", p, int, 443)
        if not 0 < port < 65536:
            r.fail(f"{p}port", "must be 1..65535")
        path = r.get(t, "http_path", p, str)
        if path is not None and not path.startswith("/"):
            r.fail(f"{p}http_path", "must start with /")
        out.append(Target(name=name.rstrip("."), record_types=tuple(types), port=port,
                          sni=r.get(t, "sni", p, str), http_path=path))
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        r.fail("targets", "target names must be unique")
    return tuple(out)


def _parse_resolvers(r: _Reader) -> tuple[Resolver, ...]:
    raw = r.data.get("resolvers", [])
    if not isinstance(raw, list) or not raw:
        r.fail("resolvers", "at least one [[resolvers]] entry is required")
        return ()
    out = []
    for i, t in enumerate(raw):
        p = f"resolvers[{i}]."
        if not isinstance(t, Mapping):
            r.fail(f"resolvers[{i}]", "must be a table")
            continue
        r.unknown(t, {"name", "address", "port", "transport", "provider", "client_subnet",
                      "server_name", "url"}, p)
        name = r.get(t, "name", p, str)
        if not name:
            r.fail(f"{p}name", "required")
        address = r.get(t, "address", p, str)
        try:
            ipaddress.ip_address(address or "")
        except ValueError:
            r.fail(f"{p}address", f"{address!r} is not an IP address")
        transport = r.get(t, "transport", p, str, "udp")
        if transport not in TRANSPORTS:
            r.fail(f"{p}transport", f"must be one of {TRANSPORTS}, got {transport!r}")
        default_port = {"dot": 853, "doh": 443}.get(transport, 53)
        port = r.get(t, "port", p, int, default_port)
        if not 0 < port < 65536:
            r.fail(f"{p}port", "must be 1..65535")
        subnet = r.get(t, "client_subnet", p, str)
        if subnet is not None:
            try:
                ipaddress.ip_network(subnet, strict=False)
            except ValueError:
                r.fail(f"{p}client_subnet", f"{subnet!r} is not a network such as 198.51.100.0/24")
        url = r.get(t, "url", p, str)
        if transport == "doh" and not url:
            r.fail(f"{p}url", "required for transport doh (e.g. https://host/dns-query)")
        out.append(Resolver(name=name or f"resolver-{i}", address=address or "", port=port,
                            transport=transport, provider=r.get(t, "provider", p, str, ""),
                            client_subnet=subnet, server_name=r.get(t, "server_name", p, str),
                            url=url))
    names = [x.name for x in out]
    if len(set(names)) != len(names):
        r.fail("resolvers", "resolver names must be unique")
    return tuple(out)


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError("must be an RFC 3339 date-time such as 2026-03-02T00:00:00Z")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts


def parse_config(data: Mapping[str, Any], base: Path | None = None,
                 env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    merged: dict[str, Any] = {
        k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()
    }
    _apply_env(merged, env)
    r = _Reader(merged, base or Path.cwd())
    r.unknown(merged, {"observer", "schedule", "clock", "timeouts", "limits", "tls", "rdns",
                       "netinfo", "state", "store", "sinks", "elasticsearch", "targets",
                       "resolvers", "dns"}, "")

    obs = r.table("observer")
    r.unknown(obs, {"name", "geo"}, "observer.")
    observer_name = r.get(obs, "name", "observer.", str) or os.uname().nodename
    geo = r.get(obs, "geo", "observer.", dict, {}) or {}

    sch = r.table("schedule")
    r.unknown(sch, {"interval", "jitter", "misfire_grace"}, "schedule.")
    schedule = Schedule(
        interval_s=r.duration(sch, "interval", "schedule.", 900.0),
        jitter_s=r.duration(sch, "jitter", "schedule.", 0.0),
        misfire_grace_s=r.duration(sch, "misfire_grace", "schedule.", 300.0),
    )
    if schedule.interval_s <= 0:
        r.fail("schedule.interval", "must be positive")
    if schedule.jitter_s >= schedule.interval_s:
        r.fail("schedule.jitter", "must be smaller than schedule.interval")

    clock = None
    ck = r.table("clock")
    if ck:
        r.unknown(ck, {"start", "anchor", "speed"}, "clock.")
        try:
            start = _parse_time(ck.get("start"))
        except ValueError as exc:
            r.fail("clock.start", str(exc))
            start = datetime.now(UTC)
        anchor = r.get(ck, "anchor", "clock.", float)
        if anchor is None:
            r.fail("clock.anchor", "required: the real unix time at which the clock reads start")
        speed = r.get(ck, "speed", "clock.", float, 1.0)
        if speed <= 0:
            r.fail("clock.speed", "must be positive")
        clock = Clock(start=start, anchor=anchor or 0.0, speed=speed)

    to = r.table("timeouts")
    r.unknown(to, {"dns", "connect", "tls", "http"}, "timeouts.")
    timeouts = Timeouts(
        dns=r.duration(to, "dns", "timeouts.", 2.0),
        connect=r.duration(to, "connect", "timeouts.", 3.0),
        tls=r.duration(to, "tls", "timeouts.", 3.0),
        http=r.duration(to, "http", "timeouts.", 5.0),
    )
    for k in ("dns", "connect", "tls", "http"):
        if getattr(timeouts, k) <= 0:
            r.fail(f"timeouts.{k}", "must be positive")

    lim = r.table("limits")
    r.unknown(lim, {"concurrency", "dns_retries", "max_addresses"}, "limits.")
    limits = Limits(concurrency=r.get(lim, "concurrency", "limits.", int, 64),
                    dns_retries=r.get(lim, "dns_retries", "limits.", int, 0),
                    max_addresses=r.get(lim, "max_addresses", "limits.", int, 32))
    if limits.max_addresses < 1:
        r.fail("limits.max_addresses", "must be at least 1")
    if limits.concurrency < 1:
        r.fail("limits.concurrency", "must be at least 1")

    tls = r.table("tls")
    r.unknown(tls, {"ca_file"}, "tls.")
    ca = r.path(r.get(tls, "ca_file", "tls.", str))
    if ca is not None and not ca.is_file():
        r.fail("tls.ca_file", f"{ca} does not exist")

    rd = r.table("rdns")
    r.unknown(rd, {"resolver", "enabled"}, "rdns.")
    rdns_resolver = None
    if rd.get("resolver"):
        try:
            rdns_resolver = parse_host_port(str(rd["resolver"]))
        except ValueError:
            r.fail("rdns.resolver", f"{rd['resolver']!r} is not ADDRESS[:PORT]")

    ni = r.table("netinfo")
    r.unknown(ni, {"table"}, "netinfo.")
    netinfo = r.path(r.get(ni, "table", "netinfo.", str))
    if netinfo is not None and not netinfo.is_file():
        r.fail("netinfo.table", f"{netinfo} does not exist")

    st = r.table("state")
    r.unknown(st, {"dir"}, "state.")
    store = r.table("store")
    r.unknown(store, {"dir"}, "store.")
    dns_t = r.table("dns")
    r.unknown(dns_t, {"keep_raw"}, "dns.")

    es = _parse_es(r, env)
    sinks_t = r.table("sinks")
    r.unknown(sinks_t, {"enabled"}, "sinks.")
    default_sinks = ["elasticsearch"] if es else ["ndjson"]
    sinks = r.get(sinks_t, "enabled", "sinks.", list, default_sinks)
    for s in sinks:
        if s not in SINK_TYPES:
            r.fail("sinks.enabled", f"unknown sink {s!r} (expected {SINK_TYPES})")
    if "elasticsearch" in sinks and es is None:
        r.fail("sinks.enabled", "elasticsearch sink needs an [elasticsearch] url (or ES_URL)")

    cfg = Config(
        observer_name=observer_name,
        observer_geo={str(k): str(v) for k, v in geo.items()},
        targets=_parse_targets(r),
        resolvers=_parse_resolvers(r),
        schedule=schedule,
        clock=clock,
        timeouts=timeouts,
        limits=limits,
        tls_ca_file=ca,
        rdns_resolver=rdns_resolver,
        rdns_enabled=r.get(rd, "enabled", "rdns.", bool, True),
        netinfo_table=netinfo,
        state_dir=r.path(r.get(st, "dir", "state.", str, "var/state")) or Path("var/state"),
        store_dir=r.path(r.get(store, "dir", "store.", str, "var/data")) or Path("var/data"),
        sinks=tuple(sinks),
        elasticsearch=es,
        keep_raw_answers=r.get(dns_t, "keep_raw", "dns.", bool, False),
    )
    if r.problems:
        raise ConfigError(r.problems)
    return cfg


def load_config(path: Path | str, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, validate. Relative paths are relative to the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([("(file)", f"cannot read {path}: {exc.strerror}")]) from exc
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([("(file)", f"{path} is not valid TOML: {exc}")]) from exc
    cfg = parse_config(data, base=path.resolve().parent, env=env)
    object.__setattr__(cfg, "source", path)
    return cfg
