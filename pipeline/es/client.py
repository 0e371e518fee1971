"""Clients built from ``ElasticsearchSettings``: the only place a credential is revealed.

Setup (sync), the sink (async) and the report all take their client from here so that TLS
verification, authentication and timeouts are the same everywhere. The synchronous and the
asynchronous client take the same keyword arguments, so one function builds them.
"""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path
from typing import Any, TypeVar

from elasticsearch import AsyncElasticsearch, Elasticsearch
from elasticsearch.serializer import OrjsonSerializer

from pipeline.config import ConfigError, ElasticsearchSettings

log = logging.getLogger(__name__)

# The transport logs every failed attempt at WARNING, with a traceback, and urllib3 adds its own
# retry warnings: ~40 lines before the one line edgewatch prints about the same failure. Below
# -v they are turned down to ERROR; with -v (root logger at INFO or lower) they show.
TRANSPORT_LOGGERS = ("elastic_transport", "urllib3", "aiohttp")

C = TypeVar("C", Elasticsearch, AsyncElasticsearch)


class ClientSettingsError(ConfigError):
    """The settings cannot make a client (a URL that does not parse, an unusable CA file).

    A ``ConfigError`` (so a ``ValueError``): commands that report configuration problems report
    this one the same way, naming the key; the message never contains credentials.
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__([(key, reason)])
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"

_USERINFO = re.compile(r"^(?P<scheme>https?://)[^@/]*@")


def redact_url(url: str) -> str:
    """The URL without any ``user:password@`` part, fit for a log line or an error message."""
    return _USERINFO.sub(r"\g<scheme>***@", url)


def client_kwargs(settings: ElasticsearchSettings, retries: int = 1) -> dict[str, Any]:
    """Keyword arguments shared by ``Elasticsearch`` and ``AsyncElasticsearch``.

    The transport's own retries are immediate (no backoff), so they are kept few: setup wants to
    fail fast with a clear message, and the sink has its own backoff and spool.
    """
    kwargs: dict[str, Any] = {
        "hosts": [settings.url],
        "request_timeout": settings.request_timeout,
        "max_retries": retries,
        "retry_on_timeout": False,
        "verify_certs": settings.verify_certs,
        # orjson (already a dependency) decodes replies several times faster than the stdlib's
        # json: a report over 1M checks spent 6.5 s of its 31 s decoding search pages.
        "serializer": OrjsonSerializer(),
    }
    if settings.ca_file is not None:
        kwargs["ca_certs"] = str(settings.ca_file)
    if not settings.verify_certs:
        kwargs["ssl_show_warn"] = False
        if settings.url.startswith("https://"):
            log.warning("TLS certificate verification to Elasticsearch is OFF "
                        "(elasticsearch.verify_certs = false)")
    if settings.api_key is not None:
        kwargs["api_key"] = _api_key(settings.api_key.reveal())
    elif settings.username is not None and settings.password is not None:
        kwargs["basic_auth"] = (settings.username, settings.password.reveal())
    return kwargs


def _api_key(value: str) -> str | tuple[str, str]:
    """An API key as ``id:key`` (what the create-key API shows) or already base64-encoded."""
    if ":" in value:
        key_id, _, key = value.partition(":")
        return (key_id, key)
    return value


def quiet_transport_logs() -> None:
    """Turn the transport's per-attempt warnings down unless -v asked for detail."""
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        return
    for name in TRANSPORT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:  # an explicit choice elsewhere wins
            logger.setLevel(logging.ERROR)


def _build(cls: type[C], settings: ElasticsearchSettings, retries: int) -> C:
    """``cls(**client_kwargs)``, with every way that can fail as one ``ClientSettingsError``."""
    quiet_transport_logs()
    where = redact_url(settings.url)
    if settings.ca_file is not None and not Path(settings.ca_file).is_file():
        raise ClientSettingsError("elasticsearch.ca_file (ES_CA_FILE)",
                                  f"{settings.ca_file} does not exist or is not a file")
    try:
        if settings.ca_file is not None:  # the transport reads it only at the first request
            ssl.create_default_context(cafile=str(settings.ca_file))
        return cls(**client_kwargs(settings, retries))
    except OSError as exc:  # ssl.SSLError included: the CA file is not a certificate
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        raise ClientSettingsError("elasticsearch.ca_file (ES_CA_FILE)",
                                  f"{settings.ca_file} cannot be used: {reason}") from exc
    except (ValueError, TypeError) as exc:  # e.g. "Could not parse URL" for port 99999
        reason = str(exc).replace(settings.url, where)
        raise ClientSettingsError("elasticsearch.url (ES_URL)",
                                  f"{where} cannot be used: {reason}") from exc


def make_client(settings: ElasticsearchSettings, retries: int = 1) -> Elasticsearch:
    """The synchronous client; raises ``ClientSettingsError`` for unusable settings."""
    return _build(Elasticsearch, settings, retries)


def make_async_client(settings: ElasticsearchSettings, retries: int = 0) -> AsyncElasticsearch:
    """The asyncio client (HTTP through aiohttp, a dependency of edgewatch).

    No transport retries by default: its user, the sink, retries with backoff itself. Raises
    ``ClientSettingsError`` for unusable settings.
    """
    return _build(AsyncElasticsearch, settings, retries)
