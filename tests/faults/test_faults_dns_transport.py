"""probe_dns's transport against hostile peers: one deadline, stray replies, refusals.

Every test runs on asyncio's loop and on uvloop's (``[runtime] event_loop``): the ICMP refusal
on a connected datagram socket, the TCP retry and the deadlines must hold on both.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from faults_dns_peers import (
    RR,
    Reply,
    Request,
    a,
    addresses_reply,
    closed_udp_port,
    dns_peer,
    response,
    silent,
)

from pipeline import eventloop
from pipeline.config import Resolver
from pipeline.probe.dns import DnsResult, probe_dns
from pipeline.probe.dns_exchange import _DRAIN

QNAME = "api.faults.test"
LOOP = ["asyncio"]


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_choice(request: pytest.FixtureRequest) -> str:
    assert eventloop.loop_name(request.param) == request.param, "uvloop is a test dependency"
    LOOP[0] = request.param
    return request.param


def ask(port: int, timeout: float, transport: str = "udp") -> tuple[DnsResult, float]:
    resolver = Resolver("hostile", "127.0.0.1", port, transport=transport)
    t0 = time.perf_counter()
    res = eventloop.run(probe_dns(resolver, QNAME, "A", timeout), LOOP[0])
    return res, time.perf_counter() - t0


def bound(timeout: float) -> float:
    """Generous: proves the deadline holds on a shared, noisy machine, not how fast it is."""
    return 1.5 * timeout + 0.3


def truncated(req: Request) -> list[Reply]:
    return [Reply(response(req, tc=True))]


def test_truncated_udp_then_slow_tcp_ends_within_one_timeout() -> None:
    slow_tcp = addresses_reply("192.0.2.1", at=0.9)  # alone it fits the 1 s; after UDP it must not
    with dns_peer(lambda r: [Reply(response(r, tc=True), at=0.5)], tcp=slow_tcp) as peer:
        res, took = ask(peer.port, 1.0)
    assert res.error_type == "dns.timeout", res
    assert "TCP retry" in (res.error_message or "")
    assert took < bound(1.0)
    assert [r.transport for r in peer.requests] == ["udp", "tcp"]


def test_truncated_udp_then_tcp_within_the_deadline_succeeds() -> None:
    with dns_peer(truncated, tcp=addresses_reply("192.0.2.5")) as peer:
        res, _ = ask(peer.port, 1.0)
    assert res.ok and res.tcp_fallback and res.address_set == {"192.0.2.5"}


def test_tcp_peer_that_never_answers_is_bounded() -> None:
    with dns_peer(udp=None, tcp=silent) as peer:
        res, took = ask(peer.port, 0.5, transport="tcp")
    assert res.error_type == "dns.timeout" and took < bound(0.5)


def test_tcp_peer_that_sends_half_a_message_is_bounded() -> None:
    def half(r: Request) -> list[Reply]:
        wire = response(r, [RR(r.qname, "A", a("192.0.2.1"))])
        return [Reply(len(wire).to_bytes(2, "big") + wire[:10], framed=False)]
    with dns_peer(udp=None, tcp=half) as peer:
        res, took = ask(peer.port, 0.5, transport="tcp")
    assert res.error_type == "dns.timeout" and took < bound(0.5)


def test_tcp_peer_that_closes_mid_message_is_a_network_error() -> None:
    def cut(r: Request) -> list[Reply]:
        return [Reply(b"\x00\x40" + b"\x00" * 10, framed=False, close=True)]
    with dns_peer(udp=None, tcp=cut) as peer:
        res, took = ask(peer.port, 1.0, transport="tcp")
    assert res.error_type == "dns.network" and "closed after" in (res.error_message or "")
    assert took < bound(1.0)


def test_wrong_id_reply_then_the_real_one_is_a_success() -> None:
    def handle(r: Request) -> list[Reply]:
        good = response(r, [RR(r.qname, "A", a("192.0.2.1"))])
        return [Reply(response(r, [RR(r.qname, "A", a("203.0.113.66"))], rid=r.id ^ 0xFFFF)),
                Reply(good, at=0.05)]
    with dns_peer(handle) as peer:
        res, _ = ask(peer.port, 1.0)
    assert res.ok and res.address_set == {"192.0.2.1"}


def test_reply_from_another_source_port_is_not_taken() -> None:
    def handle(r: Request) -> list[Reply]:
        evil = response(r, [RR(r.qname, "A", a("203.0.113.66"))])
        good = response(r, [RR(r.qname, "A", a("192.0.2.1"))])
        return [Reply(evil, other_source=True), Reply(good, at=0.05)]
    with dns_peer(handle) as peer:
        res, _ = ask(peer.port, 1.0)
    assert res.ok and res.address_set == {"192.0.2.1"}


def test_only_wrong_id_replies_is_malformed_at_the_deadline() -> None:
    def handle(r: Request) -> list[Reply]:
        return [Reply(response(r, rid=r.id ^ 1))]
    with dns_peer(handle) as peer:
        res, took = ask(peer.port, 0.4)
    assert res.error_type == "dns.malformed" and "id" in (res.error_message or "")
    assert took < bound(0.4)


def test_closed_udp_port_is_reported_at_once() -> None:
    res, took = ask(closed_udp_port(), 3.0)
    assert res.error_type == "dns.network"
    assert "ICMP port unreachable" in (res.error_message or "")
    assert took < 1.5  # half the timeout: the refusal, not the deadline, ended it


def test_silent_udp_peer_is_a_timeout_within_the_bound() -> None:
    with dns_peer(silent) as peer:
        res, took = ask(peer.port, 0.4)
    assert res.error_type == "dns.timeout" and res.rtt_us is not None and took < bound(0.4)


def test_many_probes_at_once_against_a_slow_peer_all_finish_by_the_deadline() -> None:
    async def many(port: int) -> list[DnsResult]:
        r = Resolver("hostile", "127.0.0.1", port)
        return await asyncio.gather(*(probe_dns(r, QNAME, "A", 0.5) for _ in range(50)))
    with dns_peer(lambda r: [Reply(response(r, tc=True))], tcp=silent) as peer:
        t0 = time.perf_counter()
        results = eventloop.run(many(peer.port), LOOP[0])
        took = time.perf_counter() - t0
    assert {r.error_type for r in results} == {"dns.timeout"} and took < bound(0.5) + 0.5


def datagrams_a_socket_holds(size: int) -> int:
    """How many datagrams of ``size`` bytes a fresh UDP socket's buffer holds unread here."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        for _ in range(4000):
            tx.sendto(b"x" * size, rx.getsockname())
        held = 0
        while True:
            try:
                rx.recv(65535)
            except BlockingIOError:
                return held
            held += 1


def test_a_flood_of_stray_replies_does_not_hide_the_real_answer() -> None:
    """As many strays as the client's socket buffer holds (all of them when the machine's buffer
    is large), in one burst, then the answer: the client must read through all of them.

    The flood is bounded by the buffer on purpose. With more strays than it holds, whether the
    kernel keeps the answer depends on how fast the reader runs against the sender (here a
    thread of the same process), which no client can promise: with 2,000 strays the answer was
    dropped in two of five full suite runs on a loaded 2-core machine."""
    stray_size = 64  # a stray here is 33 bytes; a smaller datagram never takes more buffer
    strays = min(2000, datagrams_a_socket_holds(stray_size) - 8)
    assert strays > 2 * _DRAIN, "the flood must span several of the client's drains"

    def handle(r: Request) -> list[Reply]:
        stray = [Reply(response(r, rid=(r.id + i) & 0xFFFF)) for i in range(1, strays + 1)]
        return [*stray, Reply(response(r, [RR(r.qname, "A", a("192.0.2.1"))]), at=0.1)]
    with dns_peer(handle) as peer:
        res, took = ask(peer.port, 2.0)
    assert res.ok and res.address_set == {"192.0.2.1"}, res
    assert took < bound(2.0)


def test_ipv6_loopback_resolver_answers_and_its_closed_port_is_refused_at_once() -> None:
    from faults_dns_peers import aaaa

    def handle(r: Request) -> list[Reply]:
        return [Reply(response(r, rid=r.id ^ 7), other_source=True),
                Reply(response(r, [RR(r.qname, "AAAA", aaaa("2001:db8::5"))]), at=0.05)]
    with dns_peer(handle, tcp=handle, host="::1") as peer:
        r = Resolver("v6", "::1", peer.port)
        res = eventloop.run(probe_dns(r, QNAME, "AAAA", 1.0), LOOP[0])
    assert res.ok and res.address_set == {"2001:db8::5"}
    t0 = time.perf_counter()
    refused = eventloop.run(probe_dns(Resolver("v6", "::1", closed_udp_port("::1")), QNAME,
                                      "AAAA", 3.0), LOOP[0])
    assert refused.error_type == "dns.network" and time.perf_counter() - t0 < 1.5


def test_stray_reply_then_truncation_then_silent_tcp_is_a_timeout_of_the_retry() -> None:
    def handle(r: Request) -> list[Reply]:
        return [Reply(response(r, rid=r.id ^ 3)), Reply(response(r, tc=True), at=0.05)]
    with dns_peer(handle, tcp=silent) as peer:
        res, took = ask(peer.port, 0.5)
    assert res.error_type == "dns.timeout" and "TCP retry" in (res.error_message or "")
    assert took < bound(0.5)


def test_dot_and_doh_peers_that_accept_and_never_speak_are_bounded() -> None:
    """The encrypted transports keep dnspython's code, under an outer deadline as a net."""
    with dns_peer(udp=None, tcp=silent) as peer:
        dot = Resolver("dot", "127.0.0.1", peer.port, transport="dot",
                       server_name="dot.faults.test")
        doh = Resolver("doh", "127.0.0.1", peer.port, transport="doh",
                       url=f"https://doh.faults.test:{peer.port}/dns-query")
        for resolver in (dot, doh):
            t0 = time.perf_counter()
            res = eventloop.run(probe_dns(resolver, QNAME, "A", 0.5), LOOP[0])
            took = time.perf_counter() - t0
            assert res.error_type == "dns.timeout", res
            assert took < bound(0.5), (resolver.transport, took)
