"""Putting edgewatch's saved objects (``kibana/edgewatch.ndjson``) into a Kibana.

Kibana's import API is one multipart POST; the standard library does it, so the pipeline image
needs nothing extra for this. The request is shaped as Kibana requires — ``kbn-xsrf`` header,
the ndjson as the multipart field ``file`` with a ``.ndjson`` filename, ``overwrite=true`` so a
re-import after an upgrade replaces the previous version of each object instead of failing on
conflicts — and Kibana's per-object answer is kept, because an import can "succeed" as an HTTP
request while objects in it fail (missing references, unknown types).

Objects keep their ids in every space. Since Kibana 8.0 the id of a dashboard, visualization,
data view or saved search is unique across *all* spaces, and an import into a second space of
ids that already live in another one gets new random ids from Kibana (the answer's
``destinationId``) — different on every run, so a re-import there adds copies instead of
replacing them. So outside the default space the ids are derived from the space with Kibana's
own rule for objects of a non-default space (``SavedObjectsUtils.getConvertedObjectId``:
uuid v5 of ``<space>:<type>:<id>``), references included, before the file is sent: the same
file gives the same ids in that space on every import, and the default space keeps the
readable ones. ``createNewCopies=false`` is sent explicitly.

Credentials come from the environment (``KIBANA_API_KEY``, or ``KIBANA_USERNAME`` +
``KIBANA_PASSWORD``) and only ever reach the ``Authorization`` header: never a log line, an
error message or ``repr``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.shipped import shipped_path

log = logging.getLogger(__name__)

EXPORT_NAME = "edgewatch.ndjson"
IMPORT_PATH = "/api/saved_objects/_import"
_USERINFO = re.compile(r"^(?P<scheme>https?://)[^@/]*@")
_SPACE_ID = re.compile(r"^[a-z0-9_-]+$")


class KibanaError(RuntimeError):
    """The import could not be done; ``reason`` is a short code, the message is for people."""

    reason = "failed"


class KibanaUnreachable(KibanaError):
    reason = "unreachable"


class KibanaUnauthorized(KibanaError):
    reason = "unauthorized"


class KibanaRefused(KibanaError):
    """Kibana answered the request with an HTTP error (other than 401/403)."""

    reason = "refused"


def redact_url(url: str) -> str:
    """The URL without any ``user:password@`` part, fit for a message."""
    return _USERINFO.sub(r"\g<scheme>***@", url)


def export_path() -> Path:
    """Where the shipped saved objects are.

    ``EDGEWATCH_KIBANA_FILE`` wins (a file edited locally); else the copy inside an installed
    wheel, or ``kibana/edgewatch.ndjson`` of the checkout (``pipeline.shipped``).
    """
    explicit = os.environ.get("EDGEWATCH_KIBANA_FILE")
    if explicit:
        return Path(explicit)
    return shipped_path("kibana")


@dataclass(frozen=True)
class Credentials:
    """How to authenticate to Kibana; the secret is kept out of ``repr``."""

    scheme: str  # "ApiKey" | "Basic" | ""
    secret: str = field(default="", repr=False)
    username: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Credentials:
        """``KIBANA_API_KEY`` (as Kibana/Elasticsearch shows it: base64, or ``id:key``) or
        ``KIBANA_USERNAME`` + ``KIBANA_PASSWORD``; nothing set means no authentication."""
        env = dict(os.environ) if env is None else env
        api_key = env.get("KIBANA_API_KEY", "").strip()
        if api_key:
            if ":" in api_key:  # id:key → the base64 form the Authorization header takes
                api_key = base64.b64encode(api_key.encode()).decode()
            return cls("ApiKey", api_key)
        user, password = env.get("KIBANA_USERNAME", ""), env.get("KIBANA_PASSWORD", "")
        if user and password:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            return cls("Basic", token, username=user)
        if user or password:
            raise KibanaError("set both KIBANA_USERNAME and KIBANA_PASSWORD (or KIBANA_API_KEY)")
        return cls("")

    def header(self) -> dict[str, str]:
        return {"Authorization": f"{self.scheme} {self.secret}"} if self.scheme else {}

    def describe(self) -> str:
        if self.scheme == "ApiKey":
            return "API key"
        if self.scheme == "Basic":
            return f"user {self.username}"
        return "no credentials"


@dataclass(frozen=True)
class ImportResult:
    """Kibana's answer to one import: the HTTP request worked; objects may still have failed."""

    success: bool
    success_count: int
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    results: list[dict[str, Any]]

    def renamed(self) -> list[dict[str, Any]]:
        """Objects Kibana stored under another id than the one sent (``destinationId``)."""
        return [r for r in self.results if r.get("destinationId") not in (None, r.get("id"))]

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ImportResult:
        return cls(
            success=bool(body.get("success")),
            success_count=int(body.get("successCount") or 0),
            errors=list(body.get("errors") or []),
            warnings=list(body.get("warnings") or []),
            results=list(body.get("successResults") or []),
        )


DEFAULT_SPACE = "default"


def space_object_id(space: str | None, obj_type: str, obj_id: str) -> str:
    """The id an object of edgewatch's file has in ``space`` (Kibana's getConvertedObjectId)."""
    if not space or space == DEFAULT_SPACE:
        return obj_id
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{space}:{obj_type}:{obj_id}"))


def objects_for_space(content: bytes, space: str | None) -> bytes:
    """The ndjson with every object id, and every reference to one, derived from ``space``.

    Unchanged for the default space. References to objects outside the file are left alone
    (they already have their ids in that Kibana).
    """
    if not space or space == DEFAULT_SPACE:
        return content
    objects = [json.loads(line) for line in content.decode("utf-8").splitlines()
               if line.strip()]
    ours = {(o.get("type"), o.get("id")) for o in objects}
    for obj in objects:
        obj["id"] = space_object_id(space, obj["type"], obj["id"])
        for ref in obj.get("references") or []:
            if (ref.get("type"), ref.get("id")) in ours:
                ref["id"] = space_object_id(space, ref["type"], ref["id"])
    lines = [json.dumps(o, ensure_ascii=False, separators=(",", ":")) for o in objects]
    return ("\n".join(lines) + "\n").encode("utf-8")


def import_url(kibana_url: str, space: str | None = None, overwrite: bool = True) -> str:
    """``<kibana>[/s/<space>]/api/saved_objects/_import?overwrite=true&createNewCopies=false``."""
    shape = ("--kibana-url must be http(s)://host[:port][/base-path], "
             f"got {redact_url(kibana_url)!r}")
    try:
        parsed = urllib.parse.urlsplit(kibana_url)
        port = parsed.port  # ValueError when out of range; urllib would wrap it modulo 65536
    except ValueError as exc:
        raise KibanaError(f"{shape}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise KibanaError(shape)
    if port == 0:
        raise KibanaError(f"{shape}: port 0")
    base = kibana_url.rstrip("/")
    if space and space != DEFAULT_SPACE:
        if not _SPACE_ID.match(space):
            raise KibanaError(f"space id {space!r} is not a Kibana space id "
                              "(lowercase letters, digits, '_' and '-')")
        base += f"/s/{space}"
    query = "?overwrite=true&createNewCopies=false" if overwrite else "?createNewCopies=false"
    return f"{base}{IMPORT_PATH}{query}"


def multipart(field_name: str, filename: str, content: bytes,
              content_type: str = "application/ndjson") -> tuple[bytes, str]:
    """A multipart/form-data body with one file field, and its Content-Type header value."""
    boundary = f"edgewatch-{uuid.uuid4().hex}"
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + content + tail, f"multipart/form-data; boundary={boundary}"


def _ssl_context(url: str, ca_file: Path | None, verify: bool) -> ssl.SSLContext | None:
    """The TLS context for an https Kibana; a CA file that cannot be used is a usage error.

    The CA file is checked even for an http URL: naming a file that is not there is a mistake
    worth one line, whatever the scheme.
    """
    if ca_file is not None and not Path(ca_file).is_file():
        raise KibanaError(f"CA file {ca_file} (--ca-file / KIBANA_CA_FILE) does not exist "
                          "or is not a file")
    if not url.startswith("https://"):
        return None
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise KibanaError(f"CA file {ca_file} (--ca-file / KIBANA_CA_FILE) cannot be used: "
                          f"{reason}") from exc
    if not verify:
        log.warning("TLS certificate verification to Kibana is OFF")
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _error_text(raw: bytes) -> str:
    """Kibana's error message (``{"statusCode","error","message"}``), or the start of the body."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:300].decode("utf-8", "replace").strip()
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:500]
    return str(body)[:500]


def _pause(attempt: int, deadline: float) -> None:
    """Back off 0.25 s, 0.5 s, 1 s … up to 5 s between attempts, never past the deadline."""
    time.sleep(max(0.0, min(0.25 * 2 ** (attempt - 1), 5.0, deadline - time.monotonic())))


@dataclass(frozen=True)
class ImportOptions:
    """How to import: into which space, as whom, and how patiently.

    ``wait`` > 0 retries, for that many seconds, while Kibana cannot be reached or answers 503
    (it does so while starting up), so a setup container can run the import as soon as Kibana's
    port is open."""

    space: str | None = None
    credentials: Credentials | None = None
    filename: str = EXPORT_NAME
    timeout: float = 60.0
    wait: float = 0.0
    ca_file: Path | None = None
    verify: bool = True


def _refusal(exc: urllib.error.HTTPError, raw: bytes, where: str,
             creds: Credentials) -> KibanaError:
    """The error for an HTTP answer that is not worth a retry."""
    if exc.code in (401, 403):
        return KibanaUnauthorized(
            f"Kibana at {where} refused the import (HTTP {exc.code}, "
            f"{creds.describe()}): {_error_text(raw)}; check KIBANA_API_KEY or "
            "KIBANA_USERNAME/KIBANA_PASSWORD and the saved-objects privileges")
    return KibanaRefused(f"Kibana at {where} answered HTTP {exc.code}: {_error_text(raw)}")


def _post(url: str, body: bytes, headers: dict[str, str], options: ImportOptions,
          creds: Credentials) -> bytes:
    """POST until Kibana answers (retrying 503 and unreachable until ``options.wait`` is up);
    return the answer's body."""
    where = redact_url(url)
    ctx = _ssl_context(url, options.ca_file, options.verify)
    deadline = time.monotonic() + max(options.wait, 0.0)
    attempt = 0
    while True:
        attempt += 1
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=options.timeout, context=ctx) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            if exc.code == 503 and time.monotonic() < deadline:
                log.info("Kibana at %s not ready (HTTP 503), retrying", where)
                _pause(attempt, deadline)
                continue
            raise _refusal(exc, raw, where, creds) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if time.monotonic() < deadline:
                log.info("cannot reach Kibana at %s yet (%s), retrying", where, reason)
                _pause(attempt, deadline)
                continue
            waited = f" after {attempt} attempts" if attempt > 1 else ""
            raise KibanaUnreachable(f"cannot reach Kibana at {where}{waited}: {reason}") from None


def import_objects(kibana_url: str, content: bytes,
                   options: ImportOptions | None = None) -> ImportResult:
    """POST ``content`` (ndjson saved objects) to Kibana's import API with overwrite, its ids
    derived from the space (``objects_for_space``).

    Raises ``KibanaError`` subclasses for everything that is not a JSON import answer.
    """
    options = options or ImportOptions()
    url = import_url(kibana_url, options.space)
    try:
        content = objects_for_space(content, options.space)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KibanaError(f"{options.filename} is not ndjson saved objects: {exc}") from None
    where = redact_url(url)
    if not options.filename.endswith(".ndjson"):
        raise KibanaError(f"Kibana only imports files named *.ndjson, not {options.filename!r}")
    creds = options.credentials if options.credentials is not None else Credentials("")
    body, content_type = multipart("file", options.filename, content)
    headers = {"kbn-xsrf": "true", "Content-Type": content_type, "Accept": "application/json",
               **creds.header()}
    raw = _post(url, body, headers, options, creds)
    try:
        answer = json.loads(raw)
    except ValueError:
        raise KibanaRefused(f"Kibana at {where} did not answer with JSON: "
                            f"{_error_text(raw)}") from None
    if not isinstance(answer, dict) or "success" not in answer:
        raise KibanaRefused(f"{where} answered, but not with an import result: "
                            f"{str(answer)[:300]}")
    return ImportResult.from_body(answer)


def describe_error(error: dict[str, Any]) -> str:
    """One line per failed object, e.g. ``dashboard edgewatch-overview (title): missing_references
    index-pattern/x``."""
    kind = error.get("type", "?")
    obj_id = error.get("id", "?")
    title = error.get("title") or (error.get("meta") or {}).get("title") or ""
    detail = error.get("error") or {}
    what = str(detail.get("type", "error"))
    extra = ""
    if detail.get("references"):
        extra = " " + ", ".join(f"{r.get('type')}/{r.get('id')}" for r in detail["references"])
    elif detail.get("message"):
        extra = f" {detail['message']}"
    elif what == "unsupported_type":
        extra = " (this Kibana does not know the type)"
    named = f" ({title})" if title else ""
    return f"{kind} {obj_id}{named}: {what}{extra}"
