"""What several subcommands share: finding and loading the configuration."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.clock import ScenarioClock, real_clock
from pipeline.config import Config, ConfigError, check_writable_dirs, load_config
from pipeline.probe.netinfo import NetinfoError, NetinfoTable

DEFAULT_CONFIG_NAMES = ("edgewatch.toml",)


def make_clock(config: Config) -> ScenarioClock:
    """The config's scenario clock (the lab's speed-up), or real time."""
    if config.clock is None:
        return real_clock()
    return ScenarioClock(config.clock.start, config.clock.anchor, config.clock.speed)


def add_config_argument(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "-c", "--config", type=Path, required=required,
        help="configuration file (TOML); default: $EDGEWATCH_CONFIG or ./edgewatch.toml "
        "(`edgewatch init` writes one from the example)",
    )


def resolve_config_path(path: Path | None) -> Path | None:
    if path is not None:
        return path
    if os.environ.get("EDGEWATCH_CONFIG"):
        return Path(os.environ["EDGEWATCH_CONFIG"])
    for name in DEFAULT_CONFIG_NAMES:
        if Path(name).is_file():
            return Path(name)
    return None


def load_or_exit(path: Path | None, writes: bool = True) -> Config:
    """Load the config, or print every problem with its key and exit with status 2.

    ``writes`` (the default, as for ``run`` and ``load``): also refuse to start when a folder the
    command will write is a file or read-only, and when the netinfo table is unreadable, so these
    are one line at start rather than a traceback from the first cycle. Read-only commands
    (``check``, ``report``, ``allowlist``) pass ``writes=False``.
    """
    found = resolve_config_path(path)
    if found is None:
        print("edgewatch: no configuration given: pass --config FILE, set EDGEWATCH_CONFIG, or "
              "create ./edgewatch.toml (`edgewatch init` writes one from the example)",
              file=sys.stderr)
        raise SystemExit(2)
    try:
        config = load_config(found)
        if writes:
            check_writable_dirs(config)
    except ConfigError as exc:
        if len(exc.problems) == 1:  # one problem, one line: what a person (and a log) reads first
            key, reason = exc.problems[0]
            print(f"edgewatch: {found}: {key}: {reason}", file=sys.stderr)
        else:
            print(f"edgewatch: {found}: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    if writes and config.netinfo_table is not None:
        load_netinfo_or_exit(config.netinfo_table)
    return config


def load_netinfo_or_exit(path: Path) -> NetinfoTable:
    """The netinfo table, or one line naming the file and the bad line, and exit status 2."""
    try:
        return NetinfoTable.load(path)
    except NetinfoError as exc:
        print(f"edgewatch: netinfo.table: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
