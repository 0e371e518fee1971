"""What several subcommands share: finding and loading the configuration."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.config import Config, ConfigError, load_config

DEFAULT_CONFIG_NAMES = ("edgewatch.toml",)


def add_config_argument(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "-c", "--config", type=Path, required=required,
        help="configuration file (TOML); default: $EDGEWATCH_CONFIG or ./edgewatch.toml. "
        "See config/edgewatch.example.toml",
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


def load_or_exit(path: Path | None) -> Config:
    """Load the config, or print every problem with its key and exit with status 2."""
    found = resolve_config_path(path)
    if found is None:
        print("edgewatch: no configuration given: pass --config FILE, set EDGEWATCH_CONFIG, or "
              "create ./edgewatch.toml (start from config/edgewatch.example.toml)",
              file=sys.stderr)
        raise SystemExit(2)
    try:
        return load_config(found)
    except ConfigError as exc:
        print(f"edgewatch: {found}: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
