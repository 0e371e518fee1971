"""Typed getters for the scenario loader: each names the dotted key it rejects.

``scenario_load`` reads the sections of a scenario file with these; they know the TOML shapes
(tables, durations, instants, loopback addresses and ranges, pools, views) and the one rule
about time every scenario obeys: change instants stay ``guard`` away from the poll grid.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from pathlib import Path
from typing import Any

from lab.scenario import IPV6_LAB_SPACE, ScenarioError
from lab.timeparse import parse_duration, to_epoch


class FieldReader:
    """Walks the TOML document keeping the dotted key path for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = 0.0
        self.grid = 900.0
        self.guard = 0.0
        self.pools: dict[str, tuple[str, ...]] = {}
        self.view_names: set[str] = set()

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
        """An edge address: IPv4 loopback, or IPv6 unique-local (dual-stack lab, namespaced)."""
        if not isinstance(text, str):
            raise ScenarioError(f"{key}: must be an IP address string")
        try:
            ip = ipaddress.ip_address(text)
        except ValueError as exc:
            raise ScenarioError(f"{key}: {exc}") from exc
        if ip.version == 6:
            if ip not in IPV6_LAB_SPACE:
                raise ScenarioError(f"{key}: {text} is not in {IPV6_LAB_SPACE} (IPv6 edges are"
                                    " unique-local, inside the lab's namespace)")
        elif not ip.is_loopback:
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
                lo = ipaddress.ip_address(self._address(k, lo_s.strip()))
                hi = ipaddress.ip_address(self._address(k, hi_s.strip()))
                if lo.version != hi.version or hi < lo or int(hi) - int(lo) > 4096:
                    raise ScenarioError(f"{k}: bad range {item!r}")
                out.extend(str(ipaddress.ip_address(n) if lo.version == 4
                               else ipaddress.IPv6Address(n)) for n in range(int(lo), int(hi) + 1))
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


def _tname(typ: type | tuple[type, ...]) -> str:
    if isinstance(typ, tuple):
        return " or ".join(t.__name__ for t in typ)
    return typ.__name__
