"""The metrics hooks of ``edgewatch run`` when ``[metrics]`` is not configured: each does nothing.

The run command calls the same hooks either way, so it has no branch per hook; and this module
imports nothing, so a daemon without metrics never loads prometheus_client.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any


class MetricsOff:
    taps: tuple[Any, ...] = ()

    def watch(self, sinks: Sequence[Any]) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def scheduled(self, first: datetime) -> None:
        return None

    def cycle_done(self, stats: Any) -> None:
        return None

    def skipped(self, reason: str) -> None:
        return None
