"""``[[firewall_models]]``: how a firewall object that re-resolves a hostname behaves.

A model is data, not code, so an operator can describe the firewall they actually have (which
resolver it asks, how often it refreshes, how many addresses it keeps per name, how long it
keeps the ones that dropped out) and ``edgewatch replay`` can walk the recorded answers through
it. ``kind`` names the algorithm; ``fqdn`` (the FQDN object of issue 15) is the only one so
far, and a later kind (a "living list" built from the probe's own verified checks, with its
own keys) is one more entry in ``_KINDS`` and one more replay function, not a rewrite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config.lists import list_entries
from pipeline.config.reader import Reader

FQDN = "fqdn"
LIVING = "living"
TTL = "ttl"
_FQDN_KEYS = {"name", "kind", "resolver", "refresh", "min_refresh", "max_addresses",
              "keep_previous", "description"}
# The living list of ``edgewatch allowlist serve`` (docs/LIVING_LIST.md): its rule's keys, and
# ``refresh`` = how often the firewall fetches it. Built from the probe's own verified checks of
# every resolver, so it names no resolver. ``by = "prefix"`` needs attribution the answers do
# not carry, so a replayed living list is by address or /24 (/48).
_LIVING_KEYS = {"name", "kind", "refresh", "hold", "window", "by", "max_entries", "floor",
                "description"}
LIVING_BY = ("ip", "prefix24")
# A static list deployed once (any format `edgewatch allowlist` writes, as [[allowlists]] reads),
# the baseline the other kinds are compared with.
STATIC = "static"
_STATIC_KEYS = {"name", "kind", "file", "description"}
_KINDS = {FQDN: _FQDN_KEYS, LIVING: _LIVING_KEYS, STATIC: _STATIC_KEYS}


@dataclass(frozen=True)
class FirewallModel:
    """One firewall model. ``refresh_s`` is None when the refresh follows the TTL.

    ``max_addresses`` 0 = no cap; ``keep_previous_s`` 0 = the set is replaced at each refresh.
    """

    name: str
    resolver: str
    kind: str = FQDN
    refresh_s: float | None = None  # None: "ttl" (max(served TTL, min_refresh_s))
    min_refresh_s: float = 0.0
    max_addresses: int = 0
    keep_previous_s: float = 0.0
    description: str = ""
    # kind "living" only: the rule of pipeline.publish.rule.ListRule
    hold_s: float = 6 * 3600.0
    window_s: float = 24 * 3600.0
    by: str = "ip"
    max_entries: int = 1000
    floor: float = 0.5
    file: Path | None = None  # kind "static": the list

    @property
    def refresh_label(self) -> str:
        if self.kind == STATIC:
            return f"never (the list in {self.file})"
        if self.kind == LIVING:
            return f"fetched every {self.refresh_s:g}s, hold {self.hold_s:g}s"
        if self.refresh_s is None:
            return f"ttl (min {self.min_refresh_s:g}s)"
        return f"every {self.refresh_s:g}s"


def parse_firewall_models(r: Reader, parsed: Mapping[str, Any]) -> dict[str, Any]:
    """Optional list; each entry's ``resolver`` must name a configured resolver."""
    resolvers = {x.name for x in parsed.get("resolvers", ())}
    out = list_entries(r, "firewall_models",
                       lambda r, t, i: _model(r, t, f"firewall_models[{i}].", resolvers),
                       required=False)
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        r.fail("firewall_models", "model names must be unique")
    return {"firewall_models": tuple(out)}


def _model(r: Reader, t: Mapping[str, Any], p: str, resolvers: set[str]) -> FirewallModel | None:
    kind = r.get(t, "kind", p, str, FQDN)
    if kind not in _KINDS:
        r.fail(f"{p}kind", f"must be one of {tuple(_KINDS)}, got {kind!r}")
        return None
    r.unknown(t, _KINDS[kind], p)
    name = r.get(t, "name", p, str)
    if not name:
        r.fail(f"{p}name", "required: a short label such as fw-ttl-cap8")
    if kind == LIVING:
        return _living(r, t, p, name)
    if kind == STATIC:
        return _static(r, t, p, name)
    resolver = r.get(t, "resolver", p, str)
    if not resolver:
        r.fail(f"{p}resolver", "required: the [[resolvers]] name whose answers the firewall sees")
    elif resolvers and resolver not in resolvers:
        r.fail(f"{p}resolver", f"{resolver!r} is not a configured resolver "
               f"(one of: {', '.join(sorted(resolvers))})")
    refresh = t.get("refresh", TTL)
    refresh_s = None
    if refresh != TTL:
        refresh_s = r.duration(t, "refresh", p, -1.0)  # -1: the reader named the problem
        if refresh_s == 0:
            r.fail(f"{p}refresh", 'must be "ttl" or a positive interval such as "5m"')
    min_refresh = r.duration(t, "min_refresh", p, 0.0)
    if min_refresh < 0:
        r.fail(f"{p}min_refresh", "must not be negative")
    keep = r.duration(t, "keep_previous", p, 0.0)
    if keep < 0:
        r.fail(f"{p}keep_previous", "must not be negative (0 = replaced at each refresh)")
    cap = r.integer(t, "max_addresses", p, 0, 0)
    if not name or not resolver:
        return None
    return FirewallModel(name=name, resolver=resolver, kind=kind, refresh_s=refresh_s,
                         min_refresh_s=min_refresh, max_addresses=cap, keep_previous_s=keep,
                         description=r.get(t, "description", p, str, ""))


def _living(r: Reader, t: Mapping[str, Any], p: str, name: str | None) -> FirewallModel | None:
    """A ``kind = "living"`` entry: the rule's keys, validated as ``[publish]`` validates them."""
    d = FirewallModel("", "")
    refresh = r.duration(t, "refresh", p, 300.0)
    hold = r.duration(t, "hold", p, d.hold_s)
    window = r.duration(t, "window", p, d.window_s)
    by = r.get(t, "by", p, str, d.by)
    floor = r.share(t, "floor", p, d.floor)
    if refresh <= 0:
        r.fail(f"{p}refresh", "must be a positive interval: how often the firewall fetches")
    if hold <= 0:
        r.fail(f"{p}hold", "must be positive")
    if window < hold:
        r.fail(f"{p}window", f"must be at least hold ({hold:g}s)")
    if by not in LIVING_BY:
        r.fail(f"{p}by", f"must be one of {', '.join(LIVING_BY)} in a replay, got {by!r}")
    if not name:
        return None
    return FirewallModel(name=name, resolver="", kind=LIVING, refresh_s=refresh, hold_s=hold,
                         window_s=window, by=by, floor=floor,
                         max_entries=r.integer(t, "max_entries", p, d.max_entries, 1),
                         description=r.get(t, "description", p, str, ""))


def _static(r: Reader, t: Mapping[str, Any], p: str, name: str | None) -> FirewallModel | None:
    """A ``kind = "static"`` entry: a list file that must parse now (``file:line: reason``)."""
    from pipeline.allowlists.parse import ListError, read_list

    path = r.path(r.get(t, "file", p, str))
    if path is None:
        r.fail(f"{p}file", "required: the deployed list to replay (CIDR lines, nft, ipset, json)")
        return None
    try:
        read_list(path)
    except ListError as exc:
        r.fail(f"{p}file", str(exc))
        return None
    if not name:
        return None
    return FirewallModel(name=name, resolver="", kind=STATIC, file=path,
                         description=r.get(t, "description", p, str, ""))
