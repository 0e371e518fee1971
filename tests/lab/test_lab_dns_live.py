"""Against the running lab: real resolvers in front of the lab's authoritative server."""

from __future__ import annotations

import asyncio
import subprocess

import dns.flags
import dns.message
import dns.query
import dns.rcode
from labtest_helpers import a_addresses, next_grid, poll_once, query

from lab.stack import LabStack

ACME = "acme-v02.api.lab.test"


def dig(*args: str) -> str:
    done = subprocess.run(["dig", *args], capture_output=True, text=True, timeout=10, check=True)
    return done.stdout


def answer_lines(text: str) -> list[list[str]]:
    section = text.split(";; ANSWER SECTION:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split() for line in section.splitlines()]


def test_dig_shows_the_chain_and_scaled_ttls(lab: LabStack) -> None:
    host, port = lab.resolvers["lab-google-a"]
    lines = answer_lines(dig(f"@{host}", "-p", str(port), ACME, "A"))
    assert [(x[0], x[3]) for x in lines[:2]] == [
        (f"{ACME}.", "CNAME"), (f"{ACME}.edgekey.lab.test.", "CNAME")]
    assert lines[1][4] == "e1234.a.edge.lab.test."
    a_records = lines[2:]
    assert a_records and all(x[0] == "e1234.a.edge.lab.test." and x[3] == "A" for x in a_records)
    assert {int(x[1]) for x in lines} == {lab.clock.scale_ttl(20)} | {lab.clock.scale_ttl(300)}
    # straight from the authoritative server: AA, same chain
    auth_host, auth_port = lab.auth
    direct = dig(f"@{auth_host}", "-p", str(auth_port), ACME, "+norec")
    assert "flags: qr aa" in direct and "e1234.a.edge.lab.test." in direct


def test_every_implementation_answers_and_refuses_the_outside(lab: LabStack) -> None:
    for name, (host, port) in lab.resolvers.items():
        r = lab.scenario.resolver(name)
        if r.faults:  # ask the daemon behind the shim
            plan = next(p for p in lab.plan.resolvers(lab.scenario) if p.name == name)
            host = plan.daemon
        reply = dns.query.udp(query(ACME), host, port=port, timeout=2)
        assert reply.rcode() == dns.rcode.NOERROR and a_addresses(reply), name
        outside = dns.query.udp(query("example.com"), host, port=port, timeout=2)
        assert outside.rcode() in (dns.rcode.REFUSED, dns.rcode.SERVFAIL), name
        assert not outside.answer, name
    assert {r.software for r in lab.scenario.resolvers} == {"unbound", "kresd", "pdns-recursor"}


def test_two_resolvers_differ_as_designed(lab: LabStack) -> None:
    """na vs na-alt (by source address) vs eu (by forwarded ECS), at the same instant."""
    t = next_grid(lab)

    async def at_t() -> dict[str, frozenset[str]]:
        await asyncio.sleep(max(0.0, lab.clock.real_at(t) - lab.clock.real_at(lab.clock.now())))
        out = {}
        for name, ecs in (("lab-google-a", None), ("lab-cloudflare-a", None),
                          ("lab-quad9-ecs", "198.51.100.0/24")):
            host, port = lab.resolvers[name]
            out[name] = (await poll_once(host, port, ACME, ecs, 1.0)).addresses
        return out

    got = asyncio.run(at_t())
    for name, addrs in got.items():
        assert addrs == lab.truth.authoritative(name, ACME, t), name
    assert got["lab-google-a"] != got["lab-cloudflare-a"]
    assert all(a.startswith("127.61.") for a in got["lab-quad9-ecs"])
    assert not got["lab-google-a"] & got["lab-quad9-ecs"]


def test_answers_rotate_on_the_accelerated_clock(lab: LabStack) -> None:
    """Hourly rotation: an hour of scenario time later the resolver hands out another pair."""
    first = next_grid(lab)
    times = [first, first + 3600]
    host, port = lab.resolvers["lab-google-a"]

    async def poll() -> list[frozenset[str]]:
        out = []
        for t in times:
            await asyncio.sleep(max(0.0, lab.clock.real_at(t) - lab.clock.real_at(lab.clock.now())))
            out.append((await poll_once(host, port, ACME, None, 1.0)).addresses)
        return out

    got = asyncio.run(poll())
    expected = [lab.truth.authoritative("lab-google-a", ACME, t) for t in times]
    assert got == expected and expected[0] != expected[1]


def test_reverse_names_through_a_resolver(lab: LabStack) -> None:
    host, port = lab.resolvers["lab-google-a"]
    out = dig(f"@{host}", "-p", str(port), "-x", "127.61.0.10", "+short")
    assert out.strip() == "a127-61-0-10.deploy.eu.edge.lab.test."


def test_truncated_udp_answer_is_completed_over_tcp(lab: LabStack) -> None:
    auth_host, auth_port = lab.auth
    q = dns.message.make_query("big.lab.test", "TXT")
    udp = dns.query.udp(q, auth_host, port=auth_port, timeout=2)
    assert udp.flags & dns.flags.TC and not udp.answer
    tcp = dns.query.tcp(q, auth_host, port=auth_port, timeout=2)
    assert len(tcp.answer[0]) == 16
    # a real resolver follows TC to TCP on its own and hands back the whole RRset
    host, port = lab.resolvers["lab-google-a"]
    via = dns.query.tcp(q, host, port=port, timeout=3)
    assert via.rcode() == dns.rcode.NOERROR and len(via.answer[0]) == 16
