"""The list sections, ``[[targets]]`` and ``[[resolvers]]``: one parser per entry.

An entry with a problem is still read to the end, so every problem of every entry is reported
at once; the uniqueness of names is checked over the entries that parsed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pipeline.config.checks import hostname_problem, http_path_problem, url_problem
from pipeline.config.model import (
    DEFAULT_PORTS,
    RECORD_TYPES,
    TRANSPORTS,
    Resolver,
    Target,
    default,
)
from pipeline.config.reader import Reader

T = TypeVar("T")
_TARGET_KEYS = {"name", "record_types", "port", "sni", "http_path"}
_RESOLVER_KEYS = {"name", "address", "port", "transport", "provider", "client_subnet",
                  "server_name", "url"}


def list_entries(r: Reader, section: str,
                 parse: Callable[[Reader, Mapping[str, Any], int], T | None],
                 required: bool = True, example: str = "") -> list[T]:
    """Each table of the list ``section`` (``[[section]]``) through ``parse``.

    ``required``: an absent or empty list is a problem; otherwise only a value that is not a
    list of tables is (``example`` shows the form in that message)."""
    raw = r.data.get(section, [])
    if required and (not isinstance(raw, list) or not raw):
        r.fail(section, f"at least one [[{section}]] entry is required")
        return []
    if not isinstance(raw, list):
        r.fail(section, f"must be a list of tables: [[{section}]]{example}")
        return []
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            r.fail(f"{section}[{i}]", "must be a table")
        elif (parsed := parse(r, entry, i)) is not None:
            out.append(parsed)
    return out


def parse_targets(r: Reader, parsed: Mapping[str, Any]) -> dict[str, Any]:
    """``targets``: the hostnames to resolve and check; names unique whatever their case."""
    out = list_entries(r, "targets", _target)
    names = [t.name.lower() for t in out]  # DNS names compare case-insensitively
    if len(set(names)) != len(names):
        r.fail("targets", "target names must be unique")
    return {"targets": tuple(out)}


def _target(r: Reader, t: Mapping[str, Any], i: int) -> Target | None:
    p = f"targets[{i}]."
    r.unknown(t, _TARGET_KEYS, p)
    name = r.get(t, "name", p, str)
    if "name" not in t:
        r.fail(f"{p}name", "required: a hostname such as acme-v02.api.letsencrypt.org")
    elif name is not None and (why := hostname_problem(name)):
        r.fail(f"{p}name", why)
        name = None
    types = r.get(t, "record_types", p, list, list(default(Target, "record_types")))
    bad = [x for x in types if x not in RECORD_TYPES]
    if bad or not types or len(set(types)) != len(types):
        r.fail(f"{p}record_types",
               f"must be a non-empty list of distinct {RECORD_TYPES}, got {types}")
    port = r.integer(t, "port", p, default(Target, "port"), 1, 65535)
    path = r.get(t, "http_path", p, str)
    if path is not None and (why := http_path_problem(path)):
        r.fail(f"{p}http_path", why)
    sni = r.get(t, "sni", p, str)
    if sni is not None and (why := hostname_problem(sni)):
        r.fail(f"{p}sni", why)
    if name is None:
        return None
    return Target(name=name.rstrip("."), record_types=tuple(types), port=port,
                  sni=sni.rstrip(".") if sni else None, http_path=path)


def parse_resolvers(r: Reader, parsed: Mapping[str, Any]) -> dict[str, Any]:
    """``resolvers``: who is asked; names unique (they name the runs and the documents)."""
    out = list_entries(r, "resolvers", _resolver)
    names = [x.name for x in out]
    if len(set(names)) != len(names):
        r.fail("resolvers", "resolver names must be unique")
    return {"resolvers": tuple(out)}


def _resolver(r: Reader, t: Mapping[str, Any], i: int) -> Resolver:
    p = f"resolvers[{i}]."
    r.unknown(t, _RESOLVER_KEYS, p)
    name = r.get(t, "name", p, str)
    if not name:
        r.fail(f"{p}name", "required")
    address = r.get(t, "address", p, str)
    try:
        ipaddress.ip_address(address or "")
    except ValueError:
        r.fail(f"{p}address", f"{address!r} is not an IP address")
    transport = r.get(t, "transport", p, str, default(Resolver, "transport"))
    if transport not in TRANSPORTS:
        r.fail(f"{p}transport", f"must be one of {TRANSPORTS}, got {transport!r}")
    port = r.integer(t, "port", p, DEFAULT_PORTS.get(transport, default(Resolver, "port")),
                     1, 65535)
    subnet = _client_subnet(r, t, p)
    url = _doh_url(r, t, p, transport)
    server_name = r.get(t, "server_name", p, str)
    if server_name is not None and (why := hostname_problem(server_name)):
        r.fail(f"{p}server_name", why)
    return Resolver(name=name or f"resolver-{i}", address=address or "", port=port,
                    transport=transport,
                    provider=r.get(t, "provider", p, str, default(Resolver, "provider")),
                    client_subnet=subnet, server_name=server_name, url=url)


def _client_subnet(r: Reader, t: Mapping[str, Any], p: str) -> str | None:
    subnet = r.get(t, "client_subnet", p, str)
    if subnet is not None:
        try:
            ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            r.fail(f"{p}client_subnet", f"{subnet!r} is not a network such as 198.51.100.0/24")
    return subnet


def _doh_url(r: Reader, t: Mapping[str, Any], p: str, transport: str) -> str | None:
    """The DoH endpoint: required for doh, an https:// URL with a host wherever it is given."""
    url = r.get(t, "url", p, str)
    if transport == "doh" and not url:
        r.fail(f"{p}url", "required for transport doh (e.g. https://host/dns-query)")
    elif url is not None and (why := url_problem(url, ("https",))):
        r.fail(f"{p}url", why)
    return url
