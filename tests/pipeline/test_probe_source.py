"""``[probe] source_address``: what a probe sends from, checked by who receives it.

A resolver that answers by who asks (views by source address, the asker's subnet passed on as
ECS) sees the probe's address and nothing else, so the tests look at the peer address a real
loopback server sees: the UDP query, the TCP query and the edge connection all come from the
configured address; a peer of the other family is reached from the system's choice.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
from collections.abc import Iterator

import dns.message
import dns.rrset
import pytest
from ports import udp_and_tcp_on_one_port

from pipeline.config import ConfigError, Resolver, parse_config
from pipeline.probe.connect import ConnectSpec, probe_connect
from pipeline.probe.dns import DnsOptions, ask_dns
from pipeline.probe.source import local_addr

SOURCE = "127.0.0.21"
MINIMAL = {"targets": [{"name": "api.lab.test"}],
           "resolvers": [{"name": "r", "address": "127.0.0.1"}]}


def _answer(wire: bytes) -> bytes:
    query = dns.message.from_wire(wire)
    resp = dns.message.make_response(query)
    resp.answer.append(dns.rrset.from_text(query.question[0].name, 0, "IN", "A", "192.0.2.7"))
    return resp.to_wire()


@pytest.fixture
def server() -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """A DNS server on 127.0.0.1 (UDP and TCP, one port) recording (transport, peer address)."""
    udp, tcp = udp_and_tcp_on_one_port()
    port = udp.getsockname()[1]
    tcp.listen(4)
    seen: list[tuple[str, str]] = []

    def serve_udp() -> None:
        while True:
            try:
                data, peer = udp.recvfrom(4096)
            except OSError:
                return
            seen.append(("udp", peer[0]))
            udp.sendto(_answer(data), peer)

    def serve_tcp() -> None:
        while True:
            try:
                conn, peer = tcp.accept()
            except OSError:
                return
            with conn:
                seen.append(("tcp", peer[0]))
                (n,) = struct.unpack("!H", conn.recv(2))
                out = _answer(conn.recv(n))
                conn.sendall(struct.pack("!H", len(out)) + out)

    for fn in (serve_udp, serve_tcp):
        threading.Thread(target=fn, daemon=True).start()
    try:
        yield port, seen
    finally:
        udp.close()
        tcp.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_queries_leave_from_the_source_address(server, transport: str) -> None:
    port, seen = server
    resolver = Resolver("r", "127.0.0.1", port, transport=transport)
    res = asyncio.run(ask_dns(resolver, "api.lab.test", "A", DnsOptions(1.0, source=SOURCE)))
    assert res.ok and res.address_set == {"192.0.2.7"}, res
    assert seen == [(transport, SOURCE)]
    asyncio.run(ask_dns(resolver, "api.lab.test", "A", DnsOptions(1.0)))
    assert seen[-1] == (transport, "127.0.0.1")  # without it: the system's choice


def test_edge_connections_leave_from_the_source_address() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    peers: list[str] = []

    def accept() -> None:
        conn, peer = listener.accept()
        peers.append(peer[0])
        conn.close()  # no TLS: the handshake fails, the connection was made

    threading.Thread(target=accept, daemon=True).start()
    ctx = ssl.create_default_context()
    spec = ConnectSpec((ctx, ctx), 1.0, 1.0, source=SOURCE)
    res = asyncio.run(probe_connect("127.0.0.1", port, "api.lab.test", spec))
    listener.close()
    assert res.tcp_established and peers == [SOURCE]


def test_a_peer_of_the_other_family_is_reached_from_the_systems_choice() -> None:
    assert local_addr(SOURCE, "127.0.0.1") == (SOURCE, 0)
    assert local_addr(SOURCE, "::1") is None
    assert local_addr(None, "127.0.0.1") is None
    assert local_addr("::1", "dns.example") is None  # a DoH host name: the family is unknown


def test_the_config_key_is_validated_at_start() -> None:
    cfg = parse_config({**MINIMAL, "probe": {"source_address": SOURCE}}, env={})
    assert cfg.source_address == SOURCE
    assert parse_config(MINIMAL, env={}).source_address is None
    env = {"EDGEWATCH_PROBE__SOURCE_ADDRESS": "127.0.0.22"}
    assert parse_config(MINIMAL, env=env).source_address == "127.0.0.22"
    for bad, why in (("somewhere", "is not an IP address"),
                     ("192.0.2.77", "is not an address of this host")):
        with pytest.raises(ConfigError) as err:
            parse_config({**MINIMAL, "probe": {"source_address": bad}}, env={})
        assert "probe.source_address:" in str(err.value) and bad in str(err.value)
        assert why in str(err.value)
    with pytest.raises(ConfigError, match=r"probe\.from: unknown key"):
        parse_config({**MINIMAL, "probe": {"from": SOURCE}}, env={})
