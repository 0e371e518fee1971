"""Clients built from ``ElasticsearchSettings``: the only place a credential is revealed.

Setup (sync), the sink (async) and the report all take their client from here so that TLS
verification, authentication and timeouts are the same everywhere. The synchronous and the
asynchronous client take the same keyword arguments, so one function builds them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from elasticsearch import AsyncElasticsearch, Elasticsearch

from pipeline.config import ElasticsearchSettings

log = logging.getLogger(__name__)

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


def make_client(settings: ElasticsearchSettings, retries: int = 1) -> Elasticsearch:
    return Elasticsearch(**client_kwargs(settings, retries))


def make_async_client(settings: ElasticsearchSettings, retries: int = 0) -> AsyncElasticsearch:
    """The asyncio client (HTTP through aiohttp, a dependency of edgewatch).

    No transport retries by default: its user, the sink, retries with backoff itself.
    """
    return AsyncElasticsearch(**client_kwargs(settings, retries))
