"""The living list over real HTTP(S) on loopback, fetched with http.client as a firewall would.

The evidence is a list of sightings the test changes between refreshes (the lab test,
test_publish_lab.py, feeds real checks); the server, the conditional GETs, the health endpoint,
authentication, TLS, the files and the state across a restart are the real ones.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lab.pki import generate
from pipeline.config.publish import Publish
from pipeline.publish.http import make_server
from pipeline.publish.publisher import Publisher
from pipeline.publish.rule import BUCKET_S, Sighting

T0 = datetime(2026, 3, 2, tzinfo=UTC)
TARGET = "acme.example"


class Evidence:
    """Sightings and a scenario clock the test moves by hand."""

    def __init__(self) -> None:
        self.rows: list[Sighting] = []
        self.now = T0
        self.fail: Exception | None = None

    def see(self, ip: str, minutes: float) -> None:
        t = T0 + timedelta(minutes=minutes)
        self.rows.append(Sighting(TARGET, ip, None, None, int(t.timestamp() // BUCKET_S), 1, t))
        self.now = max(self.now, t)

    def read(self, filters):
        if self.fail is not None:
            raise self.fail
        return [r for r in self.rows if r.last >= filters.start]


@contextlib.contextmanager
def serving(pub: Publish, tmp_path: Path, ev: Evidence) -> Iterator[tuple[Publisher, int]]:
    """A refreshed publisher and its server on a free loopback port, always shut down."""
    publisher = Publisher(pub, [TARGET], tmp_path / "state", ev.read, lambda: ev.now)
    publisher.refresh()
    server = make_server(publisher, pub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield publisher, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Publisher, Evidence, int, Publish]]:
    ev = Evidence()
    pub = Publish(listen=("127.0.0.1", 0), hold_s=3600, window_s=6 * 3600, floor=0.0,
                  stale_after_s=1800, directory=tmp_path / "lists")
    with serving(pub, tmp_path, ev) as (publisher, port):
        yield publisher, ev, port, pub


def get(port: int, path: str, headers: dict[str, str] | None = None,
        method: str = "GET", context: ssl.SSLContext | None = None) -> http.client.HTTPResponse:
    conn = (http.client.HTTPSConnection("localhost", port, context=context, timeout=5)
            if context else http.client.HTTPConnection("127.0.0.1", port, timeout=5))
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    resp.body = resp.read()  # type: ignore[attr-defined]
    conn.close()
    return resp


def test_conditional_gets_answer_304_until_the_list_changes(served) -> None:
    publisher, ev, port, pub = served
    ev.see("198.51.100.1", 0)
    ev.see("2001:db8::1", 0)
    publisher.refresh()
    first = get(port, f"/lists/{TARGET}.txt")
    assert first.status == 200 and first.body == b"198.51.100.1/32\n2001:db8::1/128\n"
    assert get(port, f"/lists/{TARGET}/v4.txt").body == b"198.51.100.1/32\n"
    assert get(port, f"/lists/{TARGET}/v6.txt").body == b"2001:db8::1/128\n"
    etag, modified = first.getheader("ETag"), first.getheader("Last-Modified")
    assert first.getheader("X-Edgewatch-Evidence-Time") == "2026-03-02T00:00:00.000Z"
    # same evidence again, a later refresh: still 304 by ETag and by date
    time.sleep(1.1)
    ev.see("198.51.100.1", 15)
    publisher.refresh()
    assert get(port, f"/lists/{TARGET}.txt", {"If-None-Match": etag}).status == 304
    again = get(port, f"/lists/{TARGET}.txt", {"If-Modified-Since": modified})
    assert again.status == 304 and again.body == b""
    # a new address: 200 with a new ETag and a later Last-Modified
    ev.see("198.51.100.2", 30)
    publisher.refresh()
    changed = get(port, f"/lists/{TARGET}.txt", {"If-None-Match": etag})
    assert changed.status == 200 and b"198.51.100.2/32\n" in changed.body
    assert changed.getheader("ETag") != etag and changed.getheader("Last-Modified") != modified
    head = get(port, f"/lists/{TARGET}.txt", method="HEAD")
    assert head.status == 200 and head.body == b"" and head.getheader("Content-Length") == str(
        len(changed.body))
    assert get(port, "/lists/nothing.txt").status == 404
    assert (pub.directory / f"{TARGET}.txt").read_bytes() == changed.body


def test_removal_after_hold_and_health_when_the_evidence_goes_stale(served) -> None:
    publisher, ev, port, pub = served
    ev.see("198.51.100.1", 0)
    ev.see("198.51.100.2", 0)
    for q in range(1, 6):  # .2 keeps being seen, .1 not after minute 0
        ev.see("198.51.100.2", q * 15)
        publisher.refresh()
        body = get(port, f"/lists/{TARGET}.txt").body
        assert (b"198.51.100.1/32" in body) == (q * 15 <= 60), (q, body)
    assert get(port, "/healthz").status == 200
    # the probe stops: nothing new arrives, the list stays; after stale_after health fails
    ev.now += timedelta(seconds=pub.stale_after_s + 60)
    publisher.refresh()
    assert get(port, f"/lists/{TARGET}.txt").body == b"198.51.100.2/32\n"
    health = get(port, "/healthz")
    assert health.status == 503 and b"STALE" in health.body
    # an unreadable store keeps the list too, and health names the reason
    ev.fail = OSError("disk gone")
    publisher.refresh()
    assert get(port, f"/lists/{TARGET}.txt").body == b"198.51.100.2/32\n"
    assert b"evidence unreadable: disk gone" in get(port, "/healthz").body


def test_a_restart_keeps_the_list_and_its_last_modified(served, tmp_path: Path) -> None:
    publisher, ev, port, pub = served
    ev.see("198.51.100.1", 0)
    publisher.refresh()
    before = get(port, f"/lists/{TARGET}.txt")
    later = Evidence()  # a new process whose store is empty (e.g. the store was rotated)
    later.now = ev.now + timedelta(minutes=5)
    again = Publisher(pub, [TARGET], tmp_path / "state", later.read, lambda: later.now)
    again.refresh()
    doc = again.snapshot.documents[f"/lists/{TARGET}.txt"]
    assert doc.body == before.body and doc.etag == before.getheader("ETag")
    from email.utils import formatdate
    assert formatdate(doc.modified, usegmt=True) == before.getheader("Last-Modified")


def _secret(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text + "\n")
    return path


@pytest.mark.parametrize("kind", ["token", "basic"])
def test_every_path_needs_the_configured_credential(tmp_path: Path, kind: str) -> None:
    ev = Evidence()
    ev.see("198.51.100.1", 0)
    pub = Publish(listen=("127.0.0.1", 0), floor=0.0)
    if kind == "token":
        pub = replace(pub, token_file=_secret(tmp_path, "token", "s3cret-token"))
        good = {"Authorization": "Bearer s3cret-token"}
        bad = {"Authorization": "Bearer s3cret-tokeN"}
    else:
        pub = replace(pub, basic_user="fw", basic_password_file=_secret(tmp_path, "pw", "pa:ss"))
        good = {"Authorization": "Basic " + base64.b64encode(b"fw:pa:ss").decode()}
        bad = {"Authorization": "Basic " + base64.b64encode(b"fw:pass").decode()}
    with serving(pub, tmp_path, ev) as (_, port):
        for path in (f"/lists/{TARGET}.txt", "/healthz", "/lists.json"):
            for headers in ({}, bad):
                resp = get(port, path, headers)
                assert resp.status == 401 and resp.getheader("WWW-Authenticate"), (path, headers)
            assert get(port, path, good).status == 200, path


def test_tls_with_the_configured_certificate(tmp_path: Path) -> None:
    certs = generate(tmp_path / "pki", ["localhost"], "wrong.example")
    cert, key = certs.leaves["ok"]
    ev = Evidence()
    ev.see("198.51.100.1", 0)
    pub = Publish(listen=("127.0.0.1", 0), floor=0.0, tls_cert_file=cert, tls_key_file=key)
    with serving(pub, tmp_path, ev) as (_, port):
        silent = socket.create_connection(("127.0.0.1", port))  # never speaks TLS
        ctx = ssl.create_default_context(cafile=str(certs.ca))
        resp = get(port, f"/lists/{TARGET}.txt", context=ctx)  # not held up by the silent one
        assert resp.status == 200 and resp.body == b"198.51.100.1/32\n"
        with pytest.raises(ssl.SSLCertVerificationError):
            get(port, "/healthz", context=ssl.create_default_context())  # system store: unknown
        silent.close()
