"""The living list applied to a real nftables set inside a network namespace of the test's own.

The namespace has its own loopback with IPv4 and IPv6 edge addresses, a TCP listener on each and
an output chain that lets the edge port through only to addresses in the published sets. A
prober inside the namespace connects to an address that stays in the list, without a pause,
while the publisher replaces the sets again and again: not one connection may fail (the update
is one transaction). An address that appears in the evidence is reachable after the next
refresh; one that leaves is dropped. Nothing leaves the namespace; it is always removed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.config.publish import Publish
from pipeline.publish.publisher import Publisher
from pipeline.publish.rule import BUCKET_S, Sighting

pytestmark = pytest.mark.integration
PORT = 8443
T0 = datetime(2026, 3, 2, tzinfo=UTC)
TARGET = "acme.example"
EDGES = ["127.60.9.1", "127.60.9.2", "127.60.9.3", "fd00:60:9::1", "fd00:60:9::2"]
RULES = f"""
table inet edgewatch {{
    set edgewatch_allow4 {{ type ipv4_addr; flags interval; }}
    set edgewatch_allow6 {{ type ipv6_addr; flags interval; }}
    chain out {{
        type filter hook output priority 0; policy accept;
        tcp dport {PORT} ip daddr @edgewatch_allow4 accept
        tcp dport {PORT} ip6 daddr @edgewatch_allow6 accept
        tcp dport {PORT} drop
    }}
}}
"""
LISTENER = textwrap.dedent(f"""
    import socket, sys, threading
    def serve(addr):
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, {PORT})); s.listen(512)
        while True:
            c, _ = s.accept(); c.close()
    for a in sys.argv[1:]:
        threading.Thread(target=serve, args=(a,), daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
""")
CONNECT = textwrap.dedent(f"""
    import socket, sys
    for a in sys.argv[1:]:
        fam = socket.AF_INET6 if ":" in a else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(0.5)
        try:
            s.connect((a, {PORT})); print(a, "open")
        except OSError:
            print(a, "dropped")
        finally:
            s.close()
""")
HAMMER = textwrap.dedent(f"""
    import socket, sys, time, os
    addr, stop_file = sys.argv[1], sys.argv[2]
    ok = bad = 0
    errors = set()
    while not os.path.exists(stop_file):
        # 0.5 s: below the 1 s SYN retransmission, so a dropped SYN is a failure, not a delay
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(0.5)
        try:
            s.connect((addr, {PORT})); ok += 1
        except OSError as exc:
            bad += 1; errors.add(repr(exc))
        finally:
            s.close()
        time.sleep(0.002)  # a steady stream, not a flood of the ephemeral ports
    print(ok, bad, sorted(errors))
""")


def ns_run(ns: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *args], check=True, capture_output=True,
                          text=True, timeout=30, **kw)


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ns = f"ewpub{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    listener = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        for a in EDGES:
            if ":" in a:
                subprocess.run(["ip", "-n", ns, "addr", "add", f"{a}/128", "dev", "lo"],
                               check=True)
        ns_run(ns, "nft", "-f", "-", input=RULES)
        listener = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", LISTENER,
                                     *EDGES], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        wrapper = tmp_path / "nft-in-ns"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns} nft "$@"\n')
        wrapper.chmod(0o755)
        yield ns, wrapper
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)


def reachable(ns: str) -> dict[str, bool]:
    out = ns_run(ns, sys.executable, "-c", CONNECT, *EDGES).stdout.split("\n")
    return {a: state == "open" for a, state in (line.split() for line in out if line)}


def test_sets_follow_the_list_without_dropping_a_staying_address(namespace, tmp_path) -> None:
    ns, nft = namespace
    assert not any(reachable(ns).values())  # the chain drops everything not allowed
    rows: list[Sighting] = []
    now = [T0]

    def see(ip: str, minutes: float) -> None:
        t = T0 + timedelta(minutes=minutes)
        rows.append(Sighting(TARGET, ip, None, None, int(t.timestamp() // BUCKET_S), 1, t))
        now[0] = max(now[0], t)

    pub = Publish(hold_s=1800, window_s=6 * 3600, floor=0.0, nft_set="edgewatch_allow",
                  nft_command=str(nft))
    publisher = Publisher(pub, [TARGET], tmp_path / "state", lambda f: list(rows),
                          lambda: now[0])
    see("127.60.9.1", 0)
    see("fd00:60:9::1", 0)
    publisher.refresh()
    assert reachable(ns) == {a: a in ("127.60.9.1", "fd00:60:9::1") for a in EDGES}

    stop = tmp_path / "stop"
    hammer = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", HAMMER,
                               "127.60.9.1", str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        for q in range(1, 41):  # 40 refreshes: .1 stays, .2/.3 and ::2 come and go
            see("127.60.9.1", q * 15)
            see("fd00:60:9::1", q * 15)
            see(["127.60.9.2", "127.60.9.3"][q % 2], q * 15)
            if q % 3 == 0:
                see("fd00:60:9::2", q * 15)
            publisher.refresh()
    finally:
        stop.touch()
        out, _ = hammer.communicate(timeout=30)
    ok, bad, errors = out.split(" ", 2)
    assert int(bad) == 0 and int(ok) > 40, (ok, bad, errors)
    # after the last refresh: .2 seen at q=40 (new), .3 last at q=39 (within 30 min), ::2 at
    # q=39 (within hold); one more quiet hour removes all but the ones still seen
    assert reachable(ns) == {a: True for a in EDGES}
    for q in range(41, 46):
        see("127.60.9.1", q * 15)
        see("fd00:60:9::1", q * 15)
        publisher.refresh()
    assert reachable(ns) == {a: a in ("127.60.9.1", "fd00:60:9::1") for a in EDGES}
    listing = ns_run(ns, "nft", "list", "set", "inet", "edgewatch", "edgewatch_allow4").stdout
    assert "127.60.9.1" in listing and "127.60.9.2" not in listing
