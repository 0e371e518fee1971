"""probe_rdns (PTR lookups) against hostile DNS peers: classified, bounded, class IN only."""

from __future__ import annotations

import asyncio
import struct
import time

from faults_dns_peers import (
    RR,
    Handler,
    Reply,
    Request,
    closed_udp_port,
    dns_peer,
    name_wire,
    response,
    silent,
)

from pipeline.probe.rdns import MAX_CACHE_TTL, RdnsResult, ReverseLookup, probe_rdns

ADDRESS = "192.0.2.10"
PTR_NAME = "10.2.0.192.in-addr.arpa."


def lookup(port: int, timeout: float = 0.5, address: str = ADDRESS) -> tuple[RdnsResult, float]:
    t0 = time.perf_counter()
    res = asyncio.run(probe_rdns(address, ("127.0.0.1", port), timeout))
    return res, time.perf_counter() - t0


def ptr(target: str, rclass: str = "IN", ttl: int = 300, owner: str | None = None) -> Handler:
    def handle(r: Request) -> list[Reply]:
        return [Reply(response(r, [RR(owner or r.qname, "PTR", name_wire(target), ttl,
                                      rclass)]))]
    return handle


def test_ptr_answer_gives_the_hostname() -> None:
    with dns_peer(ptr("edge-1.cdn.faults.test.")) as peer:
        res, _ = lookup(peer.port)
    assert (res.hostname, res.ttl, res.error_type) == ("edge-1.cdn.faults.test", 300, None)
    assert peer.requests[0].qname == PTR_NAME


def test_ptr_of_another_class_is_ignored() -> None:
    with dns_peer(ptr("edge-1.cdn.faults.test.", rclass="CH")) as peer:
        res, _ = lookup(peer.port)
    assert res.hostname is None and res.error_type == "dns.unexpected_class"


def test_ptr_for_another_owner_is_not_taken() -> None:
    with dns_peer(ptr("evil.faults.test.", owner="11.2.0.192.in-addr.arpa.")) as peer:
        res, _ = lookup(peer.port)
    assert res.hostname is None and res.error_type == "dns.nodata"


def test_classless_delegation_cname_is_followed_to_the_ptr() -> None:
    def handle(r: Request) -> list[Reply]:
        return [Reply(response(r, [
            RR(r.qname, "CNAME", name_wire("10.0-63.2.0.192.in-addr.arpa.")),
            RR("10.0-63.2.0.192.in-addr.arpa.", "PTR", name_wire("edge.faults.test."))]))]
    with dns_peer(handle) as peer:
        res, _ = lookup(peer.port)
    assert res.hostname == "edge.faults.test"


def test_ptr_cname_loop_is_its_own_type() -> None:
    def handle(r: Request) -> list[Reply]:
        return [Reply(response(r, [RR(r.qname, "CNAME", name_wire("x.faults.test.")),
                                   RR("x.faults.test.", "CNAME", name_wire(r.qname))]))]
    with dns_peer(handle) as peer:
        res, _ = lookup(peer.port)
    assert res.error_type == "dns.cname_loop" and res.hostname is None


def test_truncated_then_slow_tcp_ptr_is_bounded_by_one_timeout() -> None:
    with dns_peer(lambda r: [Reply(response(r, tc=True), at=0.5)],
                  tcp=lambda r: [Reply(response(r), at=0.9)]) as peer:
        res, took = lookup(peer.port, timeout=1.0)
    assert res.error_type == "dns.timeout" and took < 1.5 * 1.0 + 0.3


def test_wrong_id_then_real_ptr_is_a_success() -> None:
    def handle(r: Request) -> list[Reply]:
        good = response(r, [RR(r.qname, "PTR", name_wire("edge.faults.test."))])
        return [Reply(response(r, rid=r.id ^ 0x5555)), Reply(good, at=0.05)]
    with dns_peer(handle) as peer:
        res, _ = lookup(peer.port)
    assert res.hostname == "edge.faults.test"


def test_garbage_ptr_answer_is_malformed() -> None:
    with dns_peer(lambda r: [Reply(struct.pack("!H", r.id) + b"\x81\x80\x00\x01" + b"\xc0" * 9)]
                  ) as peer:
        res, took = lookup(peer.port, timeout=0.3)
    assert res.error_type == "dns.malformed" and took < 1.5 * 0.3 + 0.3


def test_closed_port_is_reported_at_once() -> None:
    res, took = lookup(closed_udp_port(), timeout=3.0)
    assert res.error_type == "dns.network" and took < 1.5


def test_silent_server_is_a_timeout() -> None:
    with dns_peer(silent) as peer:
        res, took = lookup(peer.port, timeout=0.3)
    assert res.error_type == "dns.timeout" and took < 1.5 * 0.3 + 0.3


def test_nxdomain_keeps_its_type() -> None:
    with dns_peer(lambda r: [Reply(response(r, rcode=3))]) as peer:
        res, _ = lookup(peer.port)
    assert res.error_type == "dns.nxdomain"


def test_not_an_address_is_classified_without_traffic() -> None:
    with dns_peer(silent) as peer:
        res, _ = lookup(peer.port, address="not-an-ip")
        assert res.error_type == "dns.bad_name" and peer.requests == []


def test_a_huge_ptr_ttl_is_cached_at_most_a_day() -> None:
    clock = [1000.0]
    with dns_peer(ptr("edge.faults.test.", ttl=2**31 - 1)) as peer:
        rl = ReverseLookup(("127.0.0.1", peer.port), 0.5, now=lambda: clock[0])

        async def twice() -> None:
            await rl.lookup(ADDRESS)
            clock[0] += MAX_CACHE_TTL + 1
            await rl.lookup(ADDRESS)
        asyncio.run(twice())
    assert len(peer.requests) == 2
