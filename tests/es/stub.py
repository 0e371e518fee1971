"""A loopback HTTP stub for the few answers a real devstack node cannot give.

The devstack node runs without security and is 9.x, so "wrong credentials", "an 8.x cluster" and
scripted overload sequences need a stand-in. Tests using it say so; everything else talks to the
real node.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# (method, path, body) -> (status, json body)
Responder = Callable[[str, str, bytes], tuple[int, object]]


@contextmanager
def stub_server(respond: Responder) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload = respond(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_HEAD = _answer

        def log_message(self, *args: object) -> None:
            pass

    with serve(Handler) as url:
        yield url


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` on an ephemeral 127.0.0.1 port for the ``with`` block; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def write_config(path: Path, url: str, namespace: str = "default") -> Path:
    """A minimal edgewatch config pointing at the cluster ``url`` (the resolver is never asked)."""
    path.write_text(f"""
[observer]
name = "probe-test"
[[targets]]
name = "acme.example.test"
[[resolvers]]
name = "r1"
address = "127.0.0.53"
[elasticsearch]
url = "{url}"
namespace = "{namespace}"
""")
    return path


def root_body(version: str) -> dict:
    return {"name": "stub", "cluster_name": "stub", "version": {"number": version,
            "build_flavor": "default"}, "tagline": "You Know, for Search"}
