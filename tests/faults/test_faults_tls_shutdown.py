"""Shutdown during a handshake that never ends: an edge that accepts TCP and never answers TLS.

A check in progress must never hold up a shutdown: cancelling it (what ``run_guarded`` does when
a second SIGTERM abandons the cycle) closes its socket at once, and no thread is left blocked in
a handshake that the interpreter would have to wait for at exit. The TLS timeout is 60 s, so a
process or a check that waited for it would be seen waiting far past the bounds used here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from faults_cycle_helpers import DnsPeer, start_run, stop, store_lines, write_config
from faults_tls_peers import EDGE_NAME, shared_pki, start_edge

from pipeline.probe import readiness
from pipeline.probe.connect import ConnectSpec, probe_connect, tls_contexts

TLS_TIMEOUT = 60.0


def _wait_accepted(edge, proc=None, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while edge.accepted < 1:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"edgewatch exited before connecting: {proc.communicate()}")
        if time.monotonic() > end:
            pytest.fail("the check never connected to the edge")
        time.sleep(0.02)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_cancelling_a_check_mid_handshake_releases_everything_at_once() -> None:
    spec = ConnectSpec(tls_contexts(shared_pki().ca_file), 1.0, TLS_TIMEOUT)
    readiness.for_loop(asyncio.get_running_loop())  # the loop's own epoll set: not the check's
    fds = _open_fds()
    with start_edge("silent") as edge:
        threads = threading.active_count()  # the edge's own accept thread counted
        task = asyncio.create_task(probe_connect("127.0.0.1", edge.port, EDGE_NAME, spec))
        while edge.accepted < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the ClientHello is out; the check waits for the answer
        assert not task.done()
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        elapsed = time.monotonic() - started
        assert threading.active_count() == threads + 1  # only the edge's serving thread
    assert elapsed < 1.0, elapsed
    assert _open_fds() == fds  # the check's socket is closed, not left to the collector


def test_a_second_sigterm_during_a_silent_handshake_exits_at_once(tmp_path: Path) -> None:
    with DnsPeer(["127.0.0.1"]) as dns, start_edge("silent") as edge:
        config = write_config(tmp_path, dns.port, target_port=edge.port, connect=1.0,
                              tls=TLS_TIMEOUT, http=1.0)
        proc = start_run(config, "--once")
        _wait_accepted(edge, proc)
        proc.send_signal(signal.SIGTERM)
        first = proc.stderr.readline()
        assert "finishing the cycle in flight" in first, first
        started = time.monotonic()
        rc, _, err = stop(proc, signal.SIGTERM, timeout=15.0)
        elapsed = time.monotonic() - started
    assert rc == 3, err
    assert "abandoned" in err and "Traceback" not in err
    assert elapsed < 10.0, elapsed  # not the 60 s TLS timeout, nor a thread joined at exit
    assert not store_lines(tmp_path / "data", "checks")
