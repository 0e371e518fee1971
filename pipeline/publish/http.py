"""The HTTP side of the living list: what a firewall's list fetcher polls.

Plain text, one entry per line, with a strong ``ETag`` and ``Last-Modified`` so that a poll of
an unchanged list is a 304 with no body. ``/healthz`` is 200 while the evidence is fresh and
503 with the reason otherwise; ``/lists.json`` describes every list. Standard library only
(``ThreadingHTTPServer``): a fetcher polls every few minutes, so nothing here needs more.
When a token or basic-auth password is configured every path needs it (the health text names
targets and addresses' ages); comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import socket
import ssl
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pipeline.config.publish import Publish
from pipeline.publish.publisher import Document, Publisher

log = logging.getLogger("edgewatch.publish.http")


def _secret(path: Path | None) -> str | None:
    return None if path is None else path.read_text().strip()


class Auth:
    """The one credential configured (or none), checked in constant time."""

    def __init__(self, publish: Publish) -> None:
        self.token = _secret(publish.token_file)
        self.basic = None
        if publish.basic_user is not None:
            pair = f"{publish.basic_user}:{_secret(publish.basic_password_file)}"
            self.basic = base64.b64encode(pair.encode()).decode()

    def allows(self, header: str | None) -> bool:
        if self.token is None and self.basic is None:
            return True
        scheme, _, value = (header or "").partition(" ")
        if self.token is not None:
            return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), self.token)
        return scheme.lower() == "basic" and hmac.compare_digest(value.strip(), self.basic or "")

    @property
    def challenge(self) -> str:
        return 'Bearer realm="edgewatch"' if self.token is not None else \
            'Basic realm="edgewatch", charset="UTF-8"'


def not_modified(doc: Document, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        return "*" in tags or doc.etag in tags or f"W/{doc.etag}" in tags
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
        return int(doc.modified) <= since
    return False


class ListHandler(BaseHTTPRequestHandler):
    """GET/HEAD of the lists, the index and the health text; nothing else is served."""

    server: ListServer
    server_version = "edgewatch"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        auth, publisher = self.server.auth, self.server.publisher
        if not auth.allows(self.headers.get("Authorization")):
            self._send(401, b"unauthorized\n", head, {"WWW-Authenticate": auth.challenge})
            return
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            ok, lines = publisher.health()
            self._send(200 if ok else 503, ("\n".join(lines) + "\n").encode(), head)
        elif path == "/lists.json":
            self._send(200, _index(publisher), head, {"Content-Type": "application/json"})
        elif (doc := publisher.snapshot.documents.get(path)) is None:
            self._send(404, b"no such list; see /lists.json\n", head)
        elif doc.evidence_time is None:
            # Never an empty list for want of evidence: a fetcher keeps its last good copy
            # on an error, whereas an empty 200 would close the firewall.
            self._send(503, b"no successful, verified check yet; see /healthz\n", head)
        else:
            self._list(doc, head)

    def _list(self, doc: Document, head: bool) -> None:
        headers = {"ETag": doc.etag, "Last-Modified": formatdate(doc.modified, usegmt=True),
                   "Cache-Control": "no-cache"}
        # the newest verified check the list follows (scenario time in an accelerated lab)
        headers["X-Edgewatch-Evidence-Time"] = doc.evidence_time or ""
        if not_modified(doc, self.headers.get("If-None-Match"),
                        self.headers.get("If-Modified-Since")):
            self._send(304, b"", True, headers)
        else:
            self._send(200, doc.body, head, headers)

    def _send(self, code: int, body: bytes, head: bool,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and code != 304:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def _index(publisher: Publisher) -> bytes:
    snap = publisher.snapshot
    out = {"lists": {}, "rule": {
        "by": publisher.rule.by, "hold_s": publisher.rule.hold_s,
        "window_s": publisher.rule.window_s, "max_entries": publisher.rule.max_entries,
        "floor": publisher.rule.floor}}
    for target, tl in snap.lists.items():
        out["lists"][target] = {
            "entries": len(tl.entries), "capped": tl.capped, "held": tl.held,
            "evidence_time": tl.evidence_time.isoformat() if tl.evidence_time else None,
            "paths": sorted(p for p in snap.documents if p.startswith(f"/lists/{target}"))}
    return (json.dumps(out, indent=2) + "\n").encode()


class ListServer(ThreadingHTTPServer):
    """IPv4 or IPv6 by the listen address; TLS handshakes in the request's own thread, so a
    slow or silent client never holds up the others."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None
    publisher: Publisher
    auth: Auth

    def finish_request(self, request, client_address) -> None:
        if self.tls is not None:
            request.settimeout(10.0)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                log.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
        super().finish_request(request, client_address)


def make_server(publisher: Publisher, publish: Publish) -> ListServer:
    """Bound and ready (``serve_forever`` runs it); OSError when the address cannot be bound."""
    assert publish.listen is not None
    host, port = publish.listen
    cls = type("ListServer6", (ListServer,), {"address_family": socket.AF_INET6}) \
        if ":" in host else ListServer
    server = cls((host, port), ListHandler)
    server.publisher, server.auth = publisher, Auth(publish)
    if publish.tls_cert_file is not None and publish.tls_key_file is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(publish.tls_cert_file, publish.tls_key_file)
        server.tls = ctx
    return server
