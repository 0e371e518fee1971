"""The ``[elasticsearch]`` section: where the cluster is, how to authenticate, how to batch.

Secrets (API key, password) come from the environment or from files the section names, never
inline, and are wrapped in ``Secret`` at once so that no repr or log line shows them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.config.checks import ca_file_problem, url_problem
from pipeline.config.model import MAX_ES_TIMEOUT_S, ElasticsearchSettings, Secret, default
from pipeline.config.reader import Reader

_P = "elasticsearch."
_KEYS = {"url", "api_key", "api_key_file", "username", "password", "password_file", "ca_file",
         "verify_certs", "namespace", "request_timeout", "bulk_max_docs", "bulk_max_bytes",
         "flush_interval", "spool_dir", "spool_max_bytes", "dead_letter_dir", "replicas"}
MAX_REPLICAS = 32


def _d(name: str) -> Any:
    return default(ElasticsearchSettings, name)


def parse_elasticsearch(r: Reader, parsed: Mapping[str, Any]) -> dict[str, Any]:
    """``elasticsearch``: the settings, or None when the section (and ES_URL) is absent."""
    t = r.table("elasticsearch")
    if not t:
        return {"elasticsearch": None}
    r.unknown(t, _KEYS, _P)
    url = r.get(t, "url", _P, str)
    if not url:
        r.fail(f"{_P}url", "required when [elasticsearch] is present (or set ES_URL)")
        return {"elasticsearch": None}
    if why := url_problem(url, ("http", "https")):
        r.fail(f"{_P}url", why)
    ca_file, namespace = _ca_file(r, t), _namespace(r, t)  # their problems come first
    return {"elasticsearch": ElasticsearchSettings(
        url=url,
        api_key=_secret(r, t, "api_key", ("ES_API_KEY", "EDGEWATCH_ES_API_KEY")),
        username=r.env.get("ES_USERNAME") or r.get(t, "username", _P, str),
        password=_secret(r, t, "password", ("ES_PASSWORD", "EDGEWATCH_ES_PASSWORD")),
        ca_file=ca_file,
        verify_certs=r.get(t, "verify_certs", _P, bool, _d("verify_certs")),
        namespace=namespace,
        request_timeout=r.bounded(t, "request_timeout", _P, _d("request_timeout"),
                                  MAX_ES_TIMEOUT_S),
        bulk_max_docs=r.integer(t, "bulk_max_docs", _P, _d("bulk_max_docs"), 1),
        bulk_max_bytes=r.integer(t, "bulk_max_bytes", _P, _d("bulk_max_bytes"), 1024),
        flush_interval_s=r.bounded(t, "flush_interval", _P, _d("flush_interval_s"), 3600.0),
        spool_dir=r.directory(t, "spool_dir", _P, _d("spool_dir")),
        spool_max_bytes=r.integer(t, "spool_max_bytes", _P, _d("spool_max_bytes"), 1024),
        dead_letter_dir=r.directory(t, "dead_letter_dir", _P, _d("dead_letter_dir")),
        replicas=_replicas(r, t),
    )}


def _replicas(r: Reader, t: Mapping[str, Any]) -> int | None:
    """``"auto"`` (None: setup decides from the data nodes) or a whole number of replicas."""
    value = r.get(t, "replicas", _P, (str, int), "auto")
    if isinstance(value, str):
        if value != "auto":
            r.fail(f"{_P}replicas", f'must be "auto" or a whole number 0..{MAX_REPLICAS}, '
                   f"got {value!r}")
        return None
    if not 0 <= value <= MAX_REPLICAS:
        r.fail(f"{_P}replicas", f'must be "auto" or a whole number 0..{MAX_REPLICAS}, '
               f"got {value}")
        return None
    return value


def _ca_file(r: Reader, t: Mapping[str, Any]) -> Path | None:
    """``ES_CA_FILE`` wins over ``ca_file``; either is loaded as the client will load it."""
    if r.env.get("ES_CA_FILE"):
        ca_file, ca_key = r.path(r.env["ES_CA_FILE"]), "ES_CA_FILE"
    else:
        ca_file, ca_key = r.path(r.get(t, "ca_file", _P, str)), f"{_P}ca_file"
    if ca_file is not None and (why := ca_file_problem(ca_file)):
        r.fail(ca_key, why)
    return ca_file


def _namespace(r: Reader, t: Mapping[str, Any]) -> str:
    """The data stream namespace: Elasticsearch refuses '-' and upper case in it."""
    namespace = r.get(t, "namespace", _P, str, _d("namespace"))
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.]*", namespace or "x") or "-" in namespace:
        r.fail(f"{_P}namespace", "lower-case letters, digits, '_' and '.' only (no '-')")
    return namespace


def _secret(r: Reader, table: Mapping[str, Any], key: str,
            env_names: tuple[str, ...]) -> Secret | None:
    """From the first of ``env_names`` set, else from ``<key>_file``; inline is refused."""
    for name in env_names:
        if r.env.get(name):
            return Secret(r.env[name])
    file_key = f"{key}_file"
    if file_key in table:
        return _secret_file(r, table, file_key)
    if key in table:
        r.fail(f"{_P}{key}",
               f"secrets are not accepted inline; use {file_key} or the environment "
               f"({' / '.join(env_names)})")
    return None


def _secret_file(r: Reader, table: Mapping[str, Any], file_key: str) -> Secret | None:
    path = r.path(r.get(table, file_key, _P, str))
    if path is None:
        return None
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        r.fail(f"{_P}{file_key}", f"cannot read {path}: {exc.strerror}")
        return None
    except UnicodeDecodeError:
        r.fail(f"{_P}{file_key}", f"{path} is not UTF-8 text")
        return None
    if not value:
        r.fail(f"{_P}{file_key}", f"{path} is empty")
        return None
    return Secret(value)
