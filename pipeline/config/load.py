"""Loading a configuration: the TOML file, the environment overrides, every section in turn.

``parse_config`` is the composition: it copies the data, applies the overrides, and runs the
section parsers in the order of ``SECTIONS`` (the order problems are reported in); each returns
the ``Config`` fields it owns, and the frozen ``Config`` is built once, from all of them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeline.config import sections
from pipeline.config.afterlife import parse_afterlife
from pipeline.config.allowlists import parse_allowlists
from pipeline.config.checks import dir_problem
from pipeline.config.cluster import parse_elasticsearch
from pipeline.config.firewall import parse_firewall_models
from pipeline.config.lists import parse_resolvers, parse_targets
from pipeline.config.model import Config, ConfigError
from pipeline.config.publish import parse_publish
from pipeline.config.reader import Reader, apply_env

Section = Callable[[Reader, Mapping[str, Any]], dict[str, Any]]

# (TOML name, parser): a later parser may read what an earlier one produced (the schedule reads
# the clock's speed, the sinks whether a cluster is configured).
SECTIONS: tuple[tuple[str, Section], ...] = (
    ("observer", sections.parse_observer),
    ("clock", sections.parse_clock),
    ("schedule", sections.parse_schedule),
    ("timeouts", sections.parse_timeouts),
    ("limits", sections.parse_limits),
    ("tls", sections.parse_tls),
    ("rdns", sections.parse_rdns),
    ("netinfo", sections.parse_netinfo),
    ("state", sections.parse_state),
    ("store", sections.parse_store),
    ("dns", sections.parse_dns),
    ("probe", sections.parse_probe),
    ("runtime", sections.parse_runtime),
    ("elasticsearch", parse_elasticsearch),
    ("sinks", sections.parse_sinks),
    ("metrics", sections.parse_metrics),
    ("targets", parse_targets),
    ("resolvers", parse_resolvers),
    ("firewall_models", parse_firewall_models),  # after resolvers: names one of them
    ("publish", parse_publish),
    ("allowlists", parse_allowlists),
    ("afterlife", parse_afterlife),
)


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    """Tables and list entries copied one level deep, so overrides never touch the caller's."""
    return {k: (dict(v) if isinstance(v, Mapping)
                else [dict(e) if isinstance(e, Mapping) else e for e in v] if isinstance(v, list)
                else v)
            for k, v in data.items()}


def parse_config(data: Mapping[str, Any], base: Path | None = None,
                 env: Mapping[str, str] | None = None, source: Path | None = None) -> Config:
    """Validate ``data`` (parsed TOML) with ``env`` overrides; ConfigError lists every problem.

    Relative paths are taken relative to ``base`` (default: the working directory).
    """
    env = os.environ if env is None else env
    merged = _copy(data)
    r = Reader(merged, base or Path.cwd(), apply_env(merged, env), env)
    r.unknown(merged, {name for name, _ in SECTIONS}, "")
    fields: dict[str, Any] = {}
    for _, parse in SECTIONS:
        fields |= parse(r, fields)
    if r.problems:
        raise ConfigError(r.problems)
    return Config(**fields, source=source)


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
    return parse_config(data, base=path.resolve().parent, env=env, source=path)


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
    problems = [(key, why) for key, path in dirs if (why := dir_problem(path, True))]
    if problems:
        raise ConfigError(problems)
