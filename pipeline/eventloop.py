"""The event loop a command runs on: asyncio's own, or uvloop's when it is installed.

uvloop (libuv under the same asyncio API) did the datagram-transport plumbing of a DNS query in
C and took 16–26 % off its CPU; since the UDP exchange reads its socket with ``sock_recv``
directly, the two loops measure the same within noise (docs/BENCHMARKS.md, "DNS fast path").
So asyncio's loop stays the default and uvloop a choice: ``[runtime] event_loop`` is
``asyncio``, ``auto`` (uvloop when importable, else asyncio) or ``uvloop`` (then it must be
installed: ``pip install 'edgewatch[uvloop]'``, checked when the configuration is read).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

EVENT_LOOPS = ("asyncio", "auto", "uvloop")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop constructor for ``choice`` (None: asyncio's default loop)."""
    if choice == "asyncio" or (choice == "auto" and not uvloop_installed()):
        return None
    import uvloop

    return uvloop.new_event_loop


def loop_name(choice: str) -> str:
    """What ``choice`` runs on here: ``"uvloop"`` or ``"asyncio"``."""
    return "asyncio" if loop_factory(choice) is None else "uvloop"


def run(main: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """``asyncio.run(main)`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
