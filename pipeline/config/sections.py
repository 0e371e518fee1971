"""The parsers of the single-table sections, one function per section.

Each takes the reader and what the sections before it produced, records its problems and
returns the ``Config`` fields it owns; defaults come from the dataclasses (``default``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.config.checks import ca_file_problem, parse_host_port, source_address_problem
from pipeline.config.model import (
    MAX_PROBE_TIMEOUT_S,
    MAX_SPEED,
    MIN_INTERVAL_S,
    MIN_REAL_INTERVAL_S,
    OBSERVER_GEO_KEYS,
    SINK_TYPES,
    Clock,
    Config,
    Limits,
    Schedule,
    Timeouts,
    default,
)
from pipeline.config.reader import Reader

Parsed = Mapping[str, Any]  # the Config fields the earlier sections produced


def parse_observer(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``observer_name`` (default: this host's name) and ``observer_geo`` (ECS string keys)."""
    obs = r.table("observer")
    r.unknown(obs, {"name", "geo"}, "observer.")
    name = r.get(obs, "name", "observer.", str)
    if name is not None and not name.strip():
        r.fail("observer.name", "must not be empty (it names the probe in every document)")
    geo = r.get(obs, "geo", "observer.", dict, {}) or {}
    r.unknown(geo, set(OBSERVER_GEO_KEYS), "observer.geo.")
    if any(not isinstance(v, str) for v in geo.values()):
        r.fail("observer.geo", "values must be strings, e.g. { name = \"eu-west\" }")
    return {"observer_name": name or os.uname().nodename,
            "observer_geo": {str(k): str(v) for k, v in geo.items()}}


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError("must be an RFC 3339 date-time such as 2026-03-02T00:00:00Z")
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _clock_problem(clock: Clock) -> str | None:
    """Why the scenario clock cannot be read now (it would point outside years 1..9999)."""
    try:
        clock.start + timedelta(seconds=(time.time() - clock.anchor) * clock.speed)
    except OverflowError:
        return "with this anchor and speed the scenario clock now reads outside years 1..9999"
    return None


def parse_clock(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``clock``: a scenario clock (the lab's speed-up), or None for real time."""
    ck = r.table("clock")
    if not ck:
        return {"clock": default(Config, "clock")}
    r.unknown(ck, {"start", "anchor", "speed"}, "clock.")
    try:
        start = _parse_time(ck.get("start"))
    except ValueError as exc:
        r.fail("clock.start", str(exc))
        start = datetime.now(UTC)
    anchor = r.get(ck, "anchor", "clock.", float)
    if anchor is None:
        r.fail("clock.anchor", "required: the real unix time at which the clock reads start")
    speed = r.get(ck, "speed", "clock.", float, default(Clock, "speed"))
    if not 0 < speed <= MAX_SPEED:
        r.fail("clock.speed", f"must be in (0, {MAX_SPEED:g}] (scenario seconds per real "
               f"second), got {speed:g}")
        speed = default(Clock, "speed")
    clock = Clock(start=start, anchor=anchor or 0.0, speed=speed)
    if anchor is not None and (why := _clock_problem(clock)):
        r.fail("clock.anchor", why)
    return {"clock": clock}


def parse_schedule(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``schedule``: an interval that is neither a flood in scenario nor in real seconds."""
    sch, p = r.table("schedule"), "schedule."
    r.unknown(sch, {"interval", "jitter", "misfire_grace"}, p)
    schedule = Schedule(
        interval_s=r.duration(sch, "interval", p, default(Schedule, "interval_s")),
        jitter_s=r.duration(sch, "jitter", p, default(Schedule, "jitter_s")),
        misfire_grace_s=r.duration(sch, "misfire_grace", p, default(Schedule, "misfire_grace_s")),
    )
    speed = parsed["clock"].speed if parsed["clock"] else 1.0
    interval = schedule.interval_s
    if interval < MIN_INTERVAL_S:
        r.fail("schedule.interval", f"must be at least {MIN_INTERVAL_S:g}s, got {interval:g}s")
    elif interval / speed < MIN_REAL_INTERVAL_S:
        r.fail("schedule.interval", f"{interval:g}s at clock.speed {speed:g} is "
               f"{interval / speed:g}s real; the minimum is {MIN_REAL_INTERVAL_S:g}s "
               "real between cycles")
    if schedule.jitter_s >= interval:
        r.fail("schedule.jitter", "must be smaller than schedule.interval")
    if schedule.misfire_grace_s <= 0:
        r.fail("schedule.misfire_grace", "must be positive")
    return {"schedule": schedule}


def parse_timeouts(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``timeouts``: each phase's budget in real seconds, in (0, MAX_PROBE_TIMEOUT_S]."""
    to = r.table("timeouts")
    keys = ("dns", "connect", "tls", "http")
    r.unknown(to, set(keys), "timeouts.")
    return {"timeouts": Timeouts(**{k: r.bounded(to, k, "timeouts.", default(Timeouts, k),
                                                 MAX_PROBE_TIMEOUT_S) for k in keys})}


def parse_limits(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``limits``. The former ``dns_retries`` is refused by name: it never did anything (a lost
    query is recorded, not retried), and a key that silently does nothing is what the unknown-key
    rule exists to prevent."""
    lim, p = r.table("limits"), "limits."
    if "dns_retries" in lim:
        r.fail("limits.dns_retries", "no longer used: edgewatch never retried a DNS query (a "
               "lost query is recorded as one); remove the key")
    r.unknown({k: v for k, v in lim.items() if k != "dns_retries"},
              {"concurrency", "max_addresses"}, p)
    return {"limits": Limits(
        concurrency=r.integer(lim, "concurrency", p, default(Limits, "concurrency"), 1),
        max_addresses=r.integer(lim, "max_addresses", p, default(Limits, "max_addresses"), 1))}


def parse_tls(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``tls_ca_file``: the bundle the TLS probe verifies edges against (default: system)."""
    tls = r.table("tls")
    r.unknown(tls, {"ca_file"}, "tls.")
    ca = r.path(r.get(tls, "ca_file", "tls.", str))
    if ca is not None and (why := ca_file_problem(ca)):
        r.fail("tls.ca_file", why)
    return {"tls_ca_file": ca}


def parse_rdns(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``rdns_resolver`` (ADDRESS[:PORT] of the PTR resolver, default: the system's) and
    ``rdns_enabled``."""
    rd = r.table("rdns")
    r.unknown(rd, {"resolver", "enabled"}, "rdns.")
    resolver = default(Config, "rdns_resolver")
    if rd.get("resolver"):
        try:
            resolver = parse_host_port(str(rd["resolver"]))
        except ValueError as exc:
            r.fail("rdns.resolver", str(exc))
    return {"rdns_resolver": resolver,
            "rdns_enabled": r.get(rd, "enabled", "rdns.", bool, default(Config, "rdns_enabled"))}


def parse_netinfo(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``netinfo_table``: an ip2asn file that must exist (its lines are read by ``run``)."""
    ni = r.table("netinfo")
    r.unknown(ni, {"table"}, "netinfo.")
    netinfo = r.path(r.get(ni, "table", "netinfo.", str))
    if netinfo is not None and not netinfo.is_file():
        r.fail("netinfo.table", f"{netinfo} does not exist" if not netinfo.exists()
               else f"{netinfo} is not a file")
    return {"netinfo_table": netinfo}


def parse_state(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``state_dir``: where open IP runs survive a restart."""
    st = r.table("state")
    r.unknown(st, {"dir"}, "state.")
    return {"state_dir": r.directory(st, "dir", "state.", default(Config, "state_dir"))}


def parse_store(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``store_dir``: the local ndjson store."""
    store = r.table("store")
    r.unknown(store, {"dir"}, "store.")
    return {"store_dir": r.directory(store, "dir", "store.", default(Config, "store_dir"))}


def parse_probe(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``source_address``: the local address DNS queries and edge checks leave from, for
    probes whose resolvers answer by who asks (one host standing for several places)."""
    probe = r.table("probe")
    r.unknown(probe, {"source_address"}, "probe.")
    source = r.get(probe, "source_address", "probe.", str)
    if source is not None and (why := source_address_problem(source)):
        r.fail("probe.source_address", why)
    return {"source_address": source}


def parse_dns(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``keep_raw_answers``: keep the wire answer in each document (for debugging)."""
    dns_t = r.table("dns")
    r.unknown(dns_t, {"keep_raw"}, "dns.")
    return {"keep_raw_answers": r.get(dns_t, "keep_raw", "dns.", bool,
                                      default(Config, "keep_raw_answers"))}


def parse_runtime(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``event_loop``: ``asyncio`` (the default), ``auto`` (uvloop when installed) or
    ``uvloop``."""
    from pipeline.eventloop import EVENT_LOOPS, uvloop_installed

    rt = r.table("runtime")
    r.unknown(rt, {"event_loop"}, "runtime.")
    loop = r.get(rt, "event_loop", "runtime.", str, default(Config, "event_loop"))
    if loop not in EVENT_LOOPS:
        r.fail("runtime.event_loop", f"must be one of {', '.join(EVENT_LOOPS)}, got {loop!r}")
    elif loop == "uvloop" and not uvloop_installed():
        r.fail("runtime.event_loop", "uvloop is not installed "
               "(pip install 'edgewatch[uvloop]', or choose auto or asyncio)")
    return {"event_loop": loop}


def parse_sinks(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``sinks``: at least one, each once; default elasticsearch with a cluster, else ndjson."""
    sinks_t = r.table("sinks")
    r.unknown(sinks_t, {"enabled"}, "sinks.")
    es = parsed["elasticsearch"]
    fallback = ["elasticsearch"] if es else list(default(Config, "sinks"))
    sinks = r.get(sinks_t, "enabled", "sinks.", list, fallback)
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
    return {"sinks": tuple(str(s) for s in sinks)}


def parse_metrics(r: Reader, parsed: Parsed) -> dict[str, Any]:
    """``metrics_listen``: ADDRESS:PORT of the Prometheus endpoint of ``edgewatch run``, or None
    (the default: no listener). The port is required: a default port would collide with
    whatever else on the host took it, and a scrape target must be written down anyway."""
    met = r.table("metrics")
    r.unknown(met, {"listen"}, "metrics.")
    listen = r.get(met, "listen", "metrics.", str)
    if listen is None:
        return {"metrics_listen": default(Config, "metrics_listen")}
    example = 'e.g. listen = "127.0.0.1:9464"'
    try:
        host, port = parse_host_port(listen, default_port=1)
        given = parse_host_port(listen, default_port=2)[1] == port  # else the default filled in
    except ValueError as exc:
        r.fail("metrics.listen", f"{exc}; {example}")
        return {"metrics_listen": None}
    if not given:
        r.fail("metrics.listen", f"{listen!r} has no port: ADDRESS:PORT, {example}")
        return {"metrics_listen": None}
    return {"metrics_listen": (host, port)}
