"""A one-line progress indication on stderr, for reads that take a while.

Long Elasticsearch reads page through composite aggregations for seconds or minutes; a person at
a terminal should see that something moves. On a terminal the line is rewritten in place; in a
log (not a terminal) a line is written at most every few seconds. Reports on stdout stay clean.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None,
                 min_interval_s: float | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval_s = (
            min_interval_s if min_interval_s is not None else (0.2 if self.tty else 5.0)
        )
        self._last = 0.0
        self._shown = False
        self._lock = threading.Lock()  # a report's reads may run in threads (report.parallel)

    def update(self, message: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._write(message)

    def _write(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last < self.min_interval_s:
            return
        self._last = now
        if self.tty:
            self.stream.write("\r\x1b[K" + message)
        else:
            self.stream.write(message + "\n")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        with self._lock:
            if self.enabled and self._shown and self.tty:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            self._shown = False
