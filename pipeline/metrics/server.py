"""The HTTP endpoint: prometheus_client's own server, bound once at start, stopped at exit.

Binding happens before the first cycle, so a port that is taken (another daemon, a second
edgewatch) is one line at start and exit status 2, not a traceback in the middle of a run.
"""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


class MetricsError(Exception):
    """The metrics endpoint cannot listen where configured; the message is one line."""


def _shown(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread

    @classmethod
    def start(cls, host: str, port: int, registry: CollectorRegistry) -> MetricsServer:
        from prometheus_client import start_http_server  # only a daemon with metrics loads it

        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            why = ("address already in use (another process listens there)"
                   if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc))
            raise MetricsError(f"metrics.listen {_shown(host, port)}: {why}") from None
        return cls(server, thread)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
