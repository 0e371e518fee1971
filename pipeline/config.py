"""One TOML file plus environment overrides, validated before anything runs.

Every problem is reported with the dotted key it concerns and why, all at once, so a person fixes
a config in one pass. Secrets (Elasticsearch API key, password) are read from the environment or
from files named in the config, are kept in ``Secret`` wrappers whose repr is masked, and never
reach a log line.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TRANSPORTS = ("udp", "tcp", "dot", "doh")
RECORD_TYPES = ("A", "AAAA")
SINK_TYPES = ("ndjson", "stdout", "elasticsearch")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_LDH_LABEL = re.compile(r"[A-Za-z0-9-]+")

# Bounds of the numbers a cycle depends on. The interval is in scenario seconds (the lab's 15m grid
# at speed 3600 is 0.25 s real); below these a "1ms" typo turns the probe into a flood.
MIN_INTERVAL_S = 1.0  # scenario seconds between two cycles
MIN_REAL_INTERVAL_S = 0.1  # real seconds between two cycles (interval / clock.speed)
MAX_SPEED = 86400.0  # one scenario day per real second
MAX_PROBE_TIMEOUT_S = 60.0  # timeouts.dns / connect / tls / http
MAX_ES_TIMEOUT_S = 300.0  # elasticsearch.request_timeout
MAX_DNS_RETRIES = 5
_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "a table"}
_HIDDEN_ENV_VALUES = ("api_key", "password", "url")  # never echoed from an override


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
        if not math.isfinite(value):
            raise ValueError("must be a finite duration")
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration such as 15m, 30s or 250ms")


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted, shortened so that a 300-character name still gives one readable line."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def hostname_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS hostname a resolver can be asked for, or None when it is one.

    The rules of RFC 1035/1123 that dnspython enforces only once the cycle runs (labels of at most
    63 octets, names of at most 253, no empty label), plus the LDH rule (letters, digits, inner
    hyphens) and "not an address". Internationalised names are accepted as A-labels
    (``xn--bcher-kva.example``); a U-label is refused with its A-label as the hint, so what is
    stored and reported is exactly what was asked.
    """
    if not name:
        return "must not be empty: a hostname such as acme-v02.api.letsencrypt.org"
    bare = name[:-1] if name.endswith(".") else name
    try:
        ipaddress.ip_address(bare)
        return (f"{_shown(name)} is an IP address; give the hostname the resolvers are asked "
                "for (and connections are verified against)")
    except ValueError:
        pass
    if not name.isascii():
        try:
            alabel = name.encode("idna").decode("ascii")
        except UnicodeError:
            return f"{_shown(name)} is not ASCII and not a valid internationalised name"
        return f"{_shown(name)} is not ASCII: write its A-label {alabel!r}"
    if not bare:
        return "must be a hostname, not the root '.'"
    if len(bare) > 253:
        return f"{_shown(name)} is {len(bare)} octets long; a DNS name has at most 253"
    labels = bare.split(".")
    for label in labels:
        if not label:
            return f"{_shown(name)} has an empty label (a leading dot or two dots in a row)"
        if len(label) > 63:
            return (f"{_shown(name)} has a label of {len(label)} octets; a DNS label has at "
                    "most 63")
        if not _LDH_LABEL.fullmatch(label):
            return (f"{_shown(name)}: label {_shown(label)} has characters other than letters, "
                    "digits and '-'")
        if label.startswith("-") or label.endswith("-"):
            return f"{_shown(name)}: label {_shown(label)} starts or ends with '-'"
    if labels[-1].isdigit():
        return f"{_shown(name)} ends in an all-numeric label: neither a hostname nor an address"
    return None


def http_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be the request target of one HTTP/1.1 GET line, or None."""
    if not path.startswith("/") or not re.fullmatch(r"[\x21-\x7e]+", path):
        return ("must start with / and hold printable ASCII without spaces "
                "(percent-encode the rest)")
    return None


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why ``url`` is not an absolute URL of one of ``schemes`` with a host and a valid port."""
    want = " or ".join(f"{s}://" for s in schemes)
    if not url or any(c.isspace() for c in url):
        return f"must be a URL starting with {want} (no spaces)"
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        return f"must start with {want}"
    if not parts.hostname:
        return "has no host (expected e.g. " + f"{schemes[0]}://host:port)"
    try:
        port = parts.port
    except ValueError:
        raw = parts.netloc.rpartition(":")[2]
        if raw.isascii() and raw.isdigit():
            return f"port {int(raw)} is out of range 1..65535"
        return f"port {_shown(raw)} is not a number in 1..65535"
    if port is not None and not 1 <= port <= 65535:
        return f"port {port} is out of range 1..65535"
    return None


def ca_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot serve as a CA bundle (missing, unreadable, not PEM), or None.

    Loaded the way the TLS probe and the Elasticsearch client will load it, so a file that passes
    here does not fail later.
    """
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_file():
        return f"{path} is not a file"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return f"{path} is not a PEM certificate (no BEGIN CERTIFICATE block)"
    import ssl  # here: most commands never load a CA file, and ssl costs start-up time

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        return f"{path} is not a usable PEM certificate bundle ({exc})"
    return None


def _dir_problem(path: Path, need_write: bool) -> str | None:
    """Why ``path`` cannot be (created and) used as a directory, or None."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        where = "is" if probe == path else f"cannot be created: {probe} is"
        return f"{path} {where} a file, not a directory"
    if need_write and not os.access(probe, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        why = "on a read-only file system" if read_only else "not writable by this user"
        if probe == path:
            return f"{path} is {why}"
        return f"{path} cannot be created: {probe} is {why}"
    return None


def check_writable_dirs(config: Config) -> None:
    """Raise ConfigError naming every directory the run would write and cannot.

    ``state.dir`` always; ``store.dir`` with the ndjson sink; the spool and dead-letter folders
    with a cluster. A missing directory is fine when it can be created. Called at start by the
    commands that write (``load_or_exit``), so a read-only disk is one line, not a traceback
    from the middle of the first cycle.
    """
    dirs = [("state.dir", config.state_dir)]
    if "ndjson" in config.sinks:
        dirs.append(("store.dir", config.store_dir))
    if config.elasticsearch is not None:
        dirs += [("elasticsearch.spool_dir", config.elasticsearch.spool_dir),
                 ("elasticsearch.dead_letter_dir", config.elasticsearch.dead_letter_dir)]
    problems = [(key, why) for key, path in dirs if (why := _dir_problem(path, True))]
    if problems:
        raise ConfigError(problems)


def parse_host_port(value: str, default_port: int = 53) -> tuple[str, int]:
    """``ADDRESS``, ``ADDRESS:PORT`` or ``[IPv6]:PORT``; ValueError with the reason otherwise.

    The one parser of resolver addresses: ``[rdns] resolver`` and ``check --resolver`` both use it.
    """
    value = value.strip()
    port_s: str | None = None
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{_shown(value)} is not ADDRESS[:PORT] or [IPv6]:PORT")
        port_s = rest[1:] if rest else None
    elif value.count(":") == 1:
        host, _, port_s = value.partition(":")
    else:
        host = value
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{_shown(host)} is not an IP address (ADDRESS[:PORT])") from None
    port = default_port
    if port_s is not None:
        if not re.fullmatch(r"[0-9]{1,6}", port_s):
            raise ValueError(f"port {_shown(port_s)} is not a number in 1..65535")
        port = int(port_s)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 1..65535")
    return host, port


class _Reader:
    """Walks the parsed TOML, collecting problems instead of stopping at the first."""

    def __init__(self, data: Mapping[str, Any], base: Path,
                 origins: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.data = data
        self.base = base
        # dotted key -> (the environment override that set it, the key(s) it overrides)
        self.origins = origins or {}
        self.problems: list[tuple[str, str]] = []

    def fail(self, key: str, reason: str) -> None:
        """Record a problem; one that an override caused is blamed on the variable."""
        origin = self.origins.get(key)
        if origin is not None:
            variable, overridden = origin
            self.problems.append((variable, f"{reason} (overrides {overridden})"))
        else:
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
            names = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
            got = _KIND_NAMES.get(type(value), type(value).__name__)
            self.fail(f"{prefix}{key}", f"must be {names}, got {got}")
            return default
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(f"{prefix}{key}", "must be a finite number")
            return default
        return value

    def integer(self, table: Mapping[str, Any], key: str, prefix: str, default: int,
                low: int, high: int | None = None) -> int:
        """An integer within [low, high]; out of range is a problem and gives the default."""
        value = self.get(table, key, prefix, int, default)
        if value < low or (high is not None and value > high):
            bound = f"{low}..{high}" if high is not None else f"at least {low}"
            self.fail(f"{prefix}{key}", f"must be {bound}, got {value}")
            return default
        return value

    def bounded(self, table: Mapping[str, Any], key: str, prefix: str, default: float,
                high: float, low: float = 0.0) -> float:
        """A duration in (low, high] seconds."""
        value = self.duration(table, key, prefix, default)
        if value <= low:
            self.fail(f"{prefix}{key}", "must be positive" if low == 0 else
                      f"must be more than {low:g}s")
        elif value > high:
            self.fail(f"{prefix}{key}", f"must be at most {high:g}s, got {value:g}s")
        return value

    def directory(self, table: Mapping[str, Any], key: str, prefix: str, default: str) -> Path:
        """A folder edgewatch creates as needed: refused when something else is in the way."""
        path = self.path(self.get(table, key, prefix, str, default) or default) or Path(default)
        why = _dir_problem(path, need_write=False)
        if why:
            self.fail(f"{prefix}{key}", why)
        return path

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


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``EDGEWATCH_<SECTION>__<KEY>=value`` overrides ``[section] key``; plus ES_* shortcuts.

    An override of a list section (``EDGEWATCH_TARGETS__PORT=8443``) applies to every entry of
    the list. The value is read as a TOML value (``64``, ``true``, ``["A"]``), else taken as a
    string. Returns which dotted keys each variable set, so that a problem is blamed on the
    variable and not on the file.
    """
    origins: dict[str, tuple[str, str]] = {}
    for name, raw in sorted(env.items()):
        if not name.startswith("EDGEWATCH_") or "__" not in name:
            continue
        section, _, key = name[len("EDGEWATCH_"):].lower().partition("__")
        hidden = any(word in key for word in _HIDDEN_ENV_VALUES)
        plain = raw.isprintable() and " " not in raw and len(raw) <= 40
        label = name if hidden else f"{name}={raw}" if plain else f"{name}={_shown(raw)}"
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        current = data.get(section)
        if section in ("targets", "resolvers"):
            entries = current if isinstance(current, list) else []
            for i, entry in enumerate(entries):
                if isinstance(entry, dict):
                    entry[key] = value
                    origins[f"{section}[{i}].{key}"] = (label, f"{section}[*].{key}")
            continue
        if current is None:
            current = data[section] = {}
            origins[section] = (label, section)
        if not isinstance(current, dict):
            continue  # "[section] must be a table" is reported for the file
        current[key] = value
        origins[f"{section}.{key}"] = (label, f"{section}.{key}")
    if env.get("ES_URL"):
        section = data.get("elasticsearch")
        if section is None:
            section = data["elasticsearch"] = {}
        if isinstance(section, dict):
            section["url"] = env["ES_URL"]
            origins["elasticsearch.url"] = ("ES_URL", "elasticsearch.url")
    return origins


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
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            r.fail(f"elasticsearch.{file_key}", f"cannot read {path}: {exc.strerror}")
            return None
        except UnicodeDecodeError:
            r.fail(f"elasticsearch.{file_key}", f"{path} is not UTF-8 text")
            return None
        if not value:
            r.fail(f"elasticsearch.{file_key}", f"{path} is empty")
            return None
        return Secret(value)
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
    why = url_problem(url, ("http", "https"))
    if why:
        r.fail(f"{p}url", why)
    ca_file = None
    if env.get("ES_CA_FILE"):
        ca_file = r.path(env["ES_CA_FILE"])
        ca_key = "ES_CA_FILE"
    else:
        ca_file, ca_key = r.path(r.get(t, "ca_file", p, str)), f"{p}ca_file"
    if ca_file is not None and (why := ca_file_problem(ca_file)):
        r.fail(ca_key, why)
    namespace = r.get(t, "namespace", p, str, "default")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.]*", namespace or "x") or "-" in namespace:
        r.fail(f"{p}namespace", "lower-case letters, digits, '_' and '.' only (no '-')")
    username = env.get("ES_USERNAME") or r.get(t, "username", p, str)
    return ElasticsearchSettings(
        url=url,
        api_key=_secret(r, t, "api_key", env, ("ES_API_KEY", "EDGEWATCH_ES_API_KEY")),
        username=username,
        password=_secret(r, t, "password", env, ("ES_PASSWORD", "EDGEWATCH_ES_PASSWORD")),
        ca_file=ca_file,
        verify_certs=r.get(t, "verify_certs", p, bool, True),
        namespace=namespace,
        request_timeout=r.bounded(t, "request_timeout", p, 30.0, MAX_ES_TIMEOUT_S),
        bulk_max_docs=r.integer(t, "bulk_max_docs", p, 500, 1),
        bulk_max_bytes=r.integer(t, "bulk_max_bytes", p, 5 * 2**20, 1024),
        flush_interval_s=r.bounded(t, "flush_interval", p, 5.0, 3600.0),
        spool_dir=r.directory(t, "spool_dir", p, "var/spool"),
        spool_max_bytes=r.integer(t, "spool_max_bytes", p, 1 << 30, 1024),
        dead_letter_dir=r.directory(t, "dead_letter_dir", p, "var/dead-letter"),
    )


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
        if "name" not in t:
            r.fail(f"{p}name", "required: a hostname such as acme-v02.api.letsencrypt.org")
        elif name is not None and (why := hostname_problem(name)):
            r.fail(f"{p}name", why)
            name = None
        types = r.get(t, "record_types", p, list, ["A"])
        bad = [x for x in types if x not in RECORD_TYPES]
        if bad or not types or len(set(types)) != len(types):
            r.fail(f"{p}record_types",
                   f"must be a non-empty list of distinct {RECORD_TYPES}, got {types}")
        port = r.integer(t, "port", p, 443, 1, 65535)
        path = r.get(t, "http_path", p, str)
        if path is not None and (why := http_path_problem(path)):
            r.fail(f"{p}http_path", why)
        sni = r.get(t, "sni", p, str)
        if sni is not None and (why := hostname_problem(sni)):
            r.fail(f"{p}sni", why)
        if name is not None:
            out.append(Target(name=name.rstrip("."), record_types=tuple(types), port=port,
                              sni=sni.rstrip(".") if sni else None, http_path=path))
    names = [t.name.lower() for t in out]  # DNS names compare case-insensitively
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
        port = r.integer(t, "port", p, default_port, 1, 65535)
        subnet = r.get(t, "client_subnet", p, str)
        if subnet is not None:
            try:
                ipaddress.ip_network(subnet, strict=False)
            except ValueError:
                r.fail(f"{p}client_subnet", f"{subnet!r} is not a network such as 198.51.100.0/24")
        url = r.get(t, "url", p, str)
        if transport == "doh" and not url:
            r.fail(f"{p}url", "required for transport doh (e.g. https://host/dns-query)")
        elif url is not None and (why := url_problem(url, ("https",))):
            r.fail(f"{p}url", why)
        server_name = r.get(t, "server_name", p, str)
        if server_name is not None and (why := hostname_problem(server_name)):
            r.fail(f"{p}server_name", why)
        out.append(Resolver(name=name or f"resolver-{i}", address=address or "", port=port,
                            transport=transport, provider=r.get(t, "provider", p, str, ""),
                            client_subnet=subnet, server_name=server_name, url=url))
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


def _clock_problem(clock: Clock) -> str | None:
    """Why the scenario clock cannot be read now (it would point outside years 1..9999)."""
    try:
        clock.start + timedelta(seconds=(time.time() - clock.anchor) * clock.speed)
    except OverflowError:
        return "with this anchor and speed the scenario clock now reads outside years 1..9999"
    return None


def _parse_schedule(r: _Reader, speed: float) -> Schedule:
    sch = r.table("schedule")
    r.unknown(sch, {"interval", "jitter", "misfire_grace"}, "schedule.")
    schedule = Schedule(
        interval_s=r.duration(sch, "interval", "schedule.", 900.0),
        jitter_s=r.duration(sch, "jitter", "schedule.", 0.0),
        misfire_grace_s=r.duration(sch, "misfire_grace", "schedule.", 300.0),
    )
    if schedule.interval_s < MIN_INTERVAL_S:
        r.fail("schedule.interval", f"must be at least {MIN_INTERVAL_S:g}s, "
               f"got {schedule.interval_s:g}s")
    elif schedule.interval_s / speed < MIN_REAL_INTERVAL_S:
        r.fail("schedule.interval", f"{schedule.interval_s:g}s at clock.speed {speed:g} is "
               f"{schedule.interval_s / speed:g}s real; the minimum is {MIN_REAL_INTERVAL_S:g}s "
               "real between cycles")
    if schedule.jitter_s >= schedule.interval_s:
        r.fail("schedule.jitter", "must be smaller than schedule.interval")
    if schedule.misfire_grace_s <= 0:
        r.fail("schedule.misfire_grace", "must be positive")
    return schedule


def _parse_clock(r: _Reader) -> Clock | None:
    ck = r.table("clock")
    if not ck:
        return None
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
    if not 0 < speed <= MAX_SPEED:
        r.fail("clock.speed", f"must be in (0, {MAX_SPEED:g}] (scenario seconds per real "
               f"second), got {speed:g}")
        speed = 1.0
    clock = Clock(start=start, anchor=anchor or 0.0, speed=speed)
    if anchor is not None and (why := _clock_problem(clock)):
        r.fail("clock.anchor", why)
    return clock


def _parse_sinks(r: _Reader, es: ElasticsearchSettings | None) -> tuple[str, ...]:
    sinks_t = r.table("sinks")
    r.unknown(sinks_t, {"enabled"}, "sinks.")
    default_sinks = ["elasticsearch"] if es else ["ndjson"]
    sinks = r.get(sinks_t, "enabled", "sinks.", list, default_sinks)
    if not sinks:
        r.fail("sinks.enabled", f"must name at least one sink of {SINK_TYPES}: with none, "
               "every document would be dropped")
    for s in sinks:
        if s not in SINK_TYPES:
            r.fail("sinks.enabled", f"unknown sink {s!r} (expected {SINK_TYPES})")
    if len(set(map(str, sinks))) != len(sinks):
        r.fail("sinks.enabled", f"lists a sink twice: {sinks}")
    if "elasticsearch" in sinks and es is None:
        r.fail("sinks.enabled", "elasticsearch sink needs an [elasticsearch] url (or ES_URL)")
    return tuple(str(s) for s in sinks)


def parse_config(data: Mapping[str, Any], base: Path | None = None,
                 env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    merged: dict[str, Any] = {
        k: (dict(v) if isinstance(v, Mapping)
            else [dict(e) if isinstance(e, Mapping) else e for e in v] if isinstance(v, list)
            else v)
        for k, v in data.items()
    }
    origins = _apply_env(merged, env)
    r = _Reader(merged, base or Path.cwd(), origins)
    r.unknown(merged, {"observer", "schedule", "clock", "timeouts", "limits", "tls", "rdns",
                       "netinfo", "state", "store", "sinks", "elasticsearch", "targets",
                       "resolvers", "dns"}, "")

    obs = r.table("observer")
    r.unknown(obs, {"name", "geo"}, "observer.")
    observer_name = r.get(obs, "name", "observer.", str)
    if observer_name is not None and not observer_name.strip():
        r.fail("observer.name", "must not be empty (it names the probe in every document)")
    observer_name = observer_name or os.uname().nodename
    geo = r.get(obs, "geo", "observer.", dict, {}) or {}
    r.unknown(geo, set(OBSERVER_GEO_KEYS), "observer.geo.")
    if any(not isinstance(v, str) for v in geo.values()):
        r.fail("observer.geo", "values must be strings, e.g. { name = \"eu-west\" }")

    clock = _parse_clock(r)
    schedule = _parse_schedule(r, clock.speed if clock else 1.0)

    to = r.table("timeouts")
    r.unknown(to, {"dns", "connect", "tls", "http"}, "timeouts.")
    timeouts = Timeouts(**{k: r.bounded(to, k, "timeouts.", getattr(Timeouts, k),
                                         MAX_PROBE_TIMEOUT_S)
                           for k in ("dns", "connect", "tls", "http")})

    lim = r.table("limits")
    r.unknown(lim, {"concurrency", "dns_retries", "max_addresses"}, "limits.")
    limits = Limits(concurrency=r.integer(lim, "concurrency", "limits.", 64, 1),
                    dns_retries=r.integer(lim, "dns_retries", "limits.", 0, 0, MAX_DNS_RETRIES),
                    max_addresses=r.integer(lim, "max_addresses", "limits.", 32, 1))

    tls = r.table("tls")
    r.unknown(tls, {"ca_file"}, "tls.")
    ca = r.path(r.get(tls, "ca_file", "tls.", str))
    if ca is not None and (why := ca_file_problem(ca)):
        r.fail("tls.ca_file", why)

    rd = r.table("rdns")
    r.unknown(rd, {"resolver", "enabled"}, "rdns.")
    rdns_resolver = None
    if rd.get("resolver"):
        try:
            rdns_resolver = parse_host_port(str(rd["resolver"]))
        except ValueError as exc:
            r.fail("rdns.resolver", str(exc))

    ni = r.table("netinfo")
    r.unknown(ni, {"table"}, "netinfo.")
    netinfo = r.path(r.get(ni, "table", "netinfo.", str))
    if netinfo is not None and not netinfo.is_file():
        r.fail("netinfo.table", f"{netinfo} does not exist" if not netinfo.exists()
               else f"{netinfo} is not a file")

    st = r.table("state")
    r.unknown(st, {"dir"}, "state.")
    store = r.table("store")
    r.unknown(store, {"dir"}, "store.")
    dns_t = r.table("dns")
    r.unknown(dns_t, {"keep_raw"}, "dns.")

    es = _parse_es(r, env)
    sinks = _parse_sinks(r, es)

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
        state_dir=r.directory(st, "dir", "state.", "var/state"),
        store_dir=r.directory(store, "dir", "store.", "var/data"),
        sinks=sinks,
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
