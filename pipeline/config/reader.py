"""Reading the parsed TOML: typed getters that collect problems, and environment overrides.

The section parsers never raise: each bad value is recorded with its dotted key (or with the
environment variable that set it) and replaced by its default, so one load reports every
problem at once.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.config.checks import dir_problem, shown
from pipeline.config.duration import parse_duration

_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "a table"}
_HIDDEN_ENV_VALUES = ("api_key", "password", "url")  # never echoed from an override


class Reader:
    """Walks the parsed TOML, collecting problems instead of stopping at the first."""

    def __init__(self, data: Mapping[str, Any], base: Path,
                 origins: Mapping[str, tuple[str, str]] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.data = data
        self.base = base
        self.env = env or {}  # for the ES_* shortcuts the cluster section reads
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

    def share(self, table: Mapping[str, Any], key: str, prefix: str, default: float) -> float:
        """A share in [0, 1]; out of range is a problem and gives the default."""
        value = self.get(table, key, prefix, float, default)
        if not 0.0 <= value <= 1.0:
            self.fail(f"{prefix}{key}", f"must be a share in 0..1, got {value:g}")
            return default
        return value

    def directory(self, table: Mapping[str, Any], key: str, prefix: str,
                  default: Path | str) -> Path:
        """A folder edgewatch creates as needed: refused when something else is in the way."""
        default = str(default)
        path = self.path(self.get(table, key, prefix, str, default) or default) or Path(default)
        why = dir_problem(path, need_write=False)
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


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
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
        label = name if hidden else f"{name}={raw}" if plain else f"{name}={shown(raw)}"
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        current = data.get(section)
        if section in ("targets", "resolvers", "allowlists"):
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
