"""One TOML file plus environment overrides, validated before anything runs.

Every problem is reported with the dotted key it concerns and why, all at once, so a person fixes
a config in one pass. Secrets (Elasticsearch API key, password) are read from the environment or
from files named in the config, are kept in ``Secret`` wrappers whose repr is masked, and never
reach a log line.

The package, by job: ``model`` (the dataclasses, their defaults and bounds), ``duration`` (the
duration grammar), ``checks`` (single values: hostnames, URLs, ports, CA files, folders),
``reader`` (typed getters and environment overrides), one parser per section (``sections``,
``lists`` for targets and resolvers, ``cluster`` for Elasticsearch, ``allowlists`` for the
deployed lists) and ``load`` (the composition). Everything other modules use is importable
from ``pipeline.config``.
"""

from pipeline.config.checks import (
    ca_file_problem,
    hostname_problem,
    http_path_problem,
    parse_host_port,
    url_problem,
)
from pipeline.config.duration import parse_duration
from pipeline.config.load import check_writable_dirs, load_config, parse_config
from pipeline.config.model import (
    MAX_ES_TIMEOUT_S,
    MAX_PROBE_TIMEOUT_S,
    MAX_SPEED,
    MIN_INTERVAL_S,
    MIN_REAL_INTERVAL_S,
    OBSERVER_GEO_KEYS,
    RECORD_TYPES,
    SINK_TYPES,
    TRANSPORTS,
    Allowlist,
    Clock,
    Config,
    ConfigError,
    ElasticsearchSettings,
    Limits,
    Resolver,
    Schedule,
    Secret,
    Target,
    Timeouts,
)

__all__ = [
    "MAX_ES_TIMEOUT_S", "MAX_PROBE_TIMEOUT_S", "MAX_SPEED", "MIN_INTERVAL_S",
    "MIN_REAL_INTERVAL_S", "OBSERVER_GEO_KEYS", "RECORD_TYPES", "SINK_TYPES", "TRANSPORTS",
    "Allowlist", "Clock", "Config", "ConfigError", "ElasticsearchSettings", "Limits", "Resolver",
    "Schedule",
    "Secret", "Target", "Timeouts", "ca_file_problem", "check_writable_dirs", "hostname_problem",
    "http_path_problem", "load_config", "parse_config", "parse_duration", "parse_host_port",
    "url_problem",
]
