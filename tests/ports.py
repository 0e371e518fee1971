"""Loopback ports for the tests' own servers."""

from __future__ import annotations

import socket


def udp_and_tcp_on_one_port(host: str = "127.0.0.1", tries: int = 50
                            ) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to the same free port on ``host`` (a DNS server answers on
    both). The port the kernel gives the UDP socket may be taken for TCP (another test's
    connection uses it as its ephemeral port): then another port is tried, so a busy machine
    does not fail the test that asked."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(tries):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        return udp, tcp
    raise RuntimeError(f"no port on {host} free for both UDP and TCP in {tries} tries")
