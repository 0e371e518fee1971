"""What the cluster is and what it can do, found out before anything is written to it.

Setup refuses early and says why: the cluster cannot be reached, refuses our credentials, is not
Elasticsearch, or is not a 9.x release (the 9.x client cannot talk to 8.x). Optional features
(index lifecycle management, data stream options in templates) are probed, not assumed: a node
assembled without ILM answers ``no handler found``, a 9.0 release does not list the
``data_stream_options.failure_store`` capability of ``PUT _index_template``, and edgewatch carries
on without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import elastic_transport
from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    UnsupportedProductError,
)

from pipeline.es.client import redact_url

SUPPORTED_MAJOR = 9
# GET / without the 9.x compatibility header, so an 8.x node answers and we can say what it is.
_PLAIN_JSON = {"accept": "application/json"}


class ClusterRefused(RuntimeError):
    """The cluster cannot be used; ``reason`` is a short code, the message is for people."""

    reason = "refused"


class ClusterUnreachable(ClusterRefused):
    reason = "unreachable"


class ClusterFailing(ClusterUnreachable):
    """The cluster answered, with a server error (5xx) or overload (429): try again later."""

    reason = "failing"


class ClusterBlocked(ClusterFailing):
    """A cluster-wide write block (``cluster.blocks.read_only``): wait until it is lifted."""

    reason = "blocked"


class ClusterUnauthorized(ClusterRefused):
    """Credentials rejected (401) or privileges missing (403): nothing works until fixed."""

    reason = "unauthorized"


class ClusterUnsupported(ClusterRefused):
    reason = "unsupported"


@dataclass(frozen=True)
class Capabilities:
    version: str
    build_flavor: str
    ilm: bool
    ilm_note: str = ""
    # PUT _index_template accepts ``template.data_stream_options.failure_store`` (8.19 / 9.1 on).
    failure_store: bool = False
    failure_store_note: str = ""

    @property
    def major(self) -> int:
        return parse_major(self.version)


def parse_major(version: str) -> int:
    try:
        return int(version.split(".", 1)[0])
    except ValueError:
        return -1


def check_root(info: dict[str, Any], url: str) -> tuple[str, str]:
    """(version, build flavor) from a ``GET /`` body; refuse anything that is not 9.x."""
    version = str(info.get("version", {}).get("number", ""))
    if not version:
        raise ClusterUnsupported(f"{redact_url(url)} answered GET / without a version number; "
                                 "is it Elasticsearch?")
    if parse_major(version) != SUPPORTED_MAJOR:
        raise ClusterUnsupported(
            f"{redact_url(url)} runs Elasticsearch {version}; edgewatch needs "
            f"{SUPPORTED_MAJOR}.x (its client speaks the {SUPPORTED_MAJOR}.x API)")
    return version, str(info.get("version", {}).get("build_flavor", ""))


def translate(exc: Exception, url: str, doing: str) -> ClusterRefused | None:
    """A client exception as the refusal a person can act on, or None if it is something else."""
    where = redact_url(url)
    if isinstance(exc, AuthenticationException):
        return ClusterUnauthorized(
            f"{where} rejected the credentials while {doing} (HTTP 401); check "
            "ES_API_KEY / elasticsearch.api_key_file or ES_USERNAME + ES_PASSWORD")
    if isinstance(exc, ApiError) and _error_type(exc) == "cluster_block_exception":
        # A 403 that is the cluster's condition (cluster.blocks.read_only, a flood-stage disk),
        # not our privileges: it passes when the block is lifted.
        return ClusterBlocked(f"{where} is blocked for writes while {doing} (HTTP "
                              f"{exc.status_code}): {_one_line(_error_reason(exc))}")
    if isinstance(exc, AuthorizationException):
        return ClusterUnauthorized(
            f"{where} refused {doing} (HTTP 403): the user or API key lacks the privilege "
            f"({_error_reason(exc)})")
    if isinstance(exc, UnsupportedProductError):
        return ClusterUnsupported(f"{where} is not Elasticsearch (no X-Elastic-Product header)")
    if isinstance(exc, elastic_transport.TlsError):
        return ClusterUnreachable(f"TLS to {where} failed while {doing}: {exc.message}; "
                                  "check elasticsearch.ca_file")
    if isinstance(exc, elastic_transport.ConnectionError | elastic_transport.ConnectionTimeout):
        return ClusterUnreachable(f"cannot reach Elasticsearch at {where} while {doing}: "
                                  f"{exc.message}")
    if isinstance(exc, ApiError) and exc.status_code == 400 and doing == "reading GET /":
        return ClusterUnsupported(f"{where} refused GET / ({_error_reason(exc)}); "
                                  f"edgewatch needs Elasticsearch {SUPPORTED_MAJOR}.x")
    if isinstance(exc, ApiError) and (exc.status_code >= 500 or exc.status_code == 429):
        return ClusterFailing(f"{where} answered HTTP {exc.status_code} while {doing}: "
                              f"{_one_line(_error_reason(exc))}; try again once the cluster "
                              "is healthy")
    if isinstance(exc, ApiError):
        return ClusterRefused(f"{where} refused {doing} with HTTP {exc.status_code}: "
                              f"{_one_line(_error_reason(exc))}")
    if isinstance(exc, elastic_transport.TransportError):
        # Serialization and other transport failures: still one line, with what was going on.
        return ClusterUnreachable(f"talking to {where} failed while {doing}: "
                                  f"{_one_line(str(exc.message))}")
    return None


def _one_line(text: str, limit: int = 300) -> str:
    """A server's error text (possibly an HTML page) squeezed into one short line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


@contextmanager
def refusing(url: str, doing: str) -> Iterator[None]:
    """Re-raise a client exception as the ``ClusterRefused`` a person can act on, if it is one."""
    try:
        yield
    except Exception as exc:
        refused = translate(exc, url, doing)
        if refused is not None:
            raise refused from exc
        raise


def _error_type(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error")
    return str(err.get("type", "")) if isinstance(err, dict) else ""


def _error_reason(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error")
    if isinstance(err, dict):
        return str(err.get("reason") or err.get("type") or exc.message)
    return str(err or exc.message)


def _ilm_from(status: int, body: Any) -> tuple[bool, str]:
    if 200 <= status < 300:
        return True, ""
    text = str(body.get("error") if isinstance(body, dict) else body)
    if status in (400, 404, 405) and "no handler found" in text:
        return False, "this cluster has no index lifecycle management (GET _ilm/status: " \
                      "no handler found)"
    if status == 403:
        return True, "ILM present but the credentials may not manage it (HTTP 403)"
    return False, f"ILM status unknown (HTTP {status}: {text[:200]})"


FAILURE_STORE_CAPABILITY = "data_stream_options.failure_store"
_FAILURE_STORE_PROBE = {"method": "PUT", "path": "/_index_template/{template}",
                        "capabilities": FAILURE_STORE_CAPABILITY}


def _failure_store_from(status: int, body: Any) -> tuple[bool, str]:
    """Whether index templates take ``data_stream_options.failure_store``, from
    ``GET _capabilities``. Only an explicit ``supported: true`` counts: a release that does not
    know the option (9.0, where the failure store is behind a feature flag) rejects the whole
    template, and it has no failure store that could swallow a refusal either."""
    if 200 <= status < 300 and isinstance(body, dict) and body.get("supported") is True:
        return True, ""
    if 200 <= status < 300 and isinstance(body, dict) and "supported" in body:
        return False, "this cluster's index templates take no data stream options (no failure " \
                      "store to disable)"
    text = str(body.get("error") if isinstance(body, dict) else body)
    return False, f"data stream options unknown (GET _capabilities: HTTP {status}: {text[:200]})"


def detect(client: Elasticsearch, url: str) -> Capabilities:
    """Version check and feature probe with the synchronous client (setup)."""
    with refusing(url, "reading GET /"):
        root = client.perform_request("GET", "/", headers=_PLAIN_JSON)
    version, flavor = check_root(dict(root.body), url)
    with refusing(url, "probing GET _ilm/status"):
        ilm = client.options(ignore_status=(400, 403, 404, 405)).perform_request(
            "GET", "/_ilm/status", headers=_PLAIN_JSON)
        has_ilm, note = _ilm_from(ilm.meta.status, ilm.body)
    with refusing(url, "probing GET _capabilities"):
        probe = client.options(ignore_status=(400, 403, 404, 405)).perform_request(
            "GET", "/_capabilities", params=_FAILURE_STORE_PROBE, headers=_PLAIN_JSON)
        failure_store, fs_note = _failure_store_from(probe.meta.status, probe.body)
    return Capabilities(version=version, build_flavor=flavor, ilm=has_ilm, ilm_note=note,
                        failure_store=failure_store, failure_store_note=fs_note)


async def detect_async(client: AsyncElasticsearch, url: str) -> str:
    """The version check alone, for the sink's first contact; returns the version."""
    with refusing(url, "reading GET /"):
        root = await client.perform_request("GET", "/", headers=_PLAIN_JSON)
    version, _ = check_root(dict(root.body), url)
    return version
