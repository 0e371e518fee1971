"""The lab's authoritative data: zone `lab.test` and the reverse zones `127.in-addr.arpa` and
`d.f.ip6.arpa` (fd00::/8, the dual-stack lab's IPv6 edges).

`LabZone.respond` turns one query into one response for a given asker and scenario instant. It is
a pure function (no sockets, no clock) so the server stays a thin transport and the answers can be
tested directly. It answers as real authoritative servers do, because real resolvers punish
shortcuts: the SOA goes into the authority section of every NXDOMAIN/NODATA (unbound misbehaves
otherwise), empty non-terminals are NODATA rather than NXDOMAIN (qname minimisation relies on it),
names outside the zones are REFUSED, and every TTL is scaled to the scenario clock's speed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from lab.netinfo import ptr_map
from lab.plan import AddressPlan
from lab.rotation import addresses_at
from lab.scenario import Scenario, Target, address_key, of_type

REVERSE_ZONES = ("127.in-addr.arpa", "d.f.ip6.arpa")
UDP_CAP = 4096  # never send UDP answers larger than this, whatever the requester offers
SERVER_PAYLOAD = 1232


@dataclass(frozen=True)
class ViewChoice:
    """Which view answers, and the ECS scope prefix to echo (None: no ECS in the query)."""

    view: str
    ecs: dns.edns.ECSOption | None = None


class LabZone:
    """Authoritative answers for the scenario; TTLs divided by `speed` (see ScenarioClock)."""

    def __init__(self, scenario: Scenario, plan: AddressPlan, speed: float,
                 source_views: dict[str, str]) -> None:
        self.scenario = scenario
        self.plan = plan
        self.speed = speed
        self.source_views = dict(source_views)
        self.origin = scenario.origin
        self.cnames: dict[str, tuple[str, int]] = {}
        self.a_owners: dict[str, Target] = {}
        for target in scenario.targets:
            for here, there in zip(target.chain, target.chain[1:], strict=False):
                self.cnames[here] = (there, target.cname_ttl)
            self.a_owners[target.chain[-1]] = target
        self.ptrs = ptr_map(scenario)
        self.static: dict[tuple[str, int], tuple[int, list[str]]] = {}
        for apex in (self.origin, *REVERSE_ZONES):
            self.static[(apex, dns.rdatatype.SOA)] = (3600, [self._soa_text()])
            self.static[(apex, dns.rdatatype.NS)] = (3600, [f"ns1.{self.origin}."])
        self.static[(f"ns1.{self.origin}", dns.rdatatype.A)] = (3600, [plan.auth])
        # A deliberately large RRset: it does not fit 512 or 1232 bytes, so UDP gets TC=1.
        self.static[(f"big.{self.origin}", dns.rdatatype.TXT)] = (
            300, [f'"{i:02d} ' + "x" * 180 + '"' for i in range(16)])
        for rev, host in self.ptrs.items():
            self.static[(rev, dns.rdatatype.PTR)] = (3600, [host + "."])
        names = {n for n, _ in self.static} | set(self.cnames) | set(self.a_owners)
        self.names = names
        self.ents = {p for n in names for p in _parents(n, self._zone_of(n) or n)} - names

    # -- helpers -------------------------------------------------------------------------
    def _soa_text(self) -> str:
        neg = self.scenario.negative_ttl
        return f"ns1.{self.origin}. hostmaster.{self.origin}. 1 3600 600 86400 {neg}"

    def _zone_of(self, name: str) -> str | None:
        for apex in (self.origin, *REVERSE_ZONES):
            if name == apex or name.endswith("." + apex):
                return apex
        return None

    def ttl(self, scenario_ttl: int) -> int:
        return max(0, min(2**31 - 1, int(scenario_ttl // self.speed)))

    def choose_view(self, source_ip: str, query: dns.message.Message) -> ViewChoice:
        """ECS (when it falls in a view's client subnets) wins; else the asker's source address."""
        view = self.source_views.get(source_ip, self.scenario.default_view)
        ecs_in = next((o for o in query.options if isinstance(o, dns.edns.ECSOption)), None)
        if ecs_in is None:
            return ViewChoice(view)
        scope = 0
        try:
            client = ipaddress.ip_address(ecs_in.address)
        except ValueError:
            client = None
        if client is not None and client.version == 4:
            for v in self.scenario.views:
                for subnet in v.client_subnets:
                    if client in subnet:
                        view, scope = v.name, subnet.prefixlen
                        break
                else:
                    continue
                break
        echo = dns.edns.ECSOption(ecs_in.address, ecs_in.srclen, scope)
        return ViewChoice(view, echo)

    # -- the answer ----------------------------------------------------------------------
    def respond(self, query: dns.message.Message, source_ip: str, t: float) -> dns.message.Message:
        """The full response (not yet size-limited) to `query` from `source_ip` at scenario t."""
        response = dns.message.make_response(query, our_payload=SERVER_PAYLOAD)
        response.flags &= ~dns.flags.RA
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        q = query.question[0]
        qname = q.name.to_text(omit_final_dot=True).lower()
        qtype = q.rdtype
        zone = self._zone_of(qname)
        if zone is None or q.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        response.flags |= dns.flags.AA
        choice = self.choose_view(source_ip, query)
        if choice.ecs is not None:
            response.use_edns(0, payload=SERVER_PAYLOAD, options=[choice.ecs])
        current = qname
        for _ in range(16):  # CNAME chase inside our zones
            if current in self.cnames and qtype != dns.rdatatype.CNAME:
                there, ttl = self.cnames[current]
                response.answer.append(
                    self._rrset(current, dns.rdatatype.CNAME, ttl, [there + "."]))
                current = there
                if self._zone_of(current) is None:
                    return response
                continue
            break
        rrset = self._lookup(current, qtype, choice.view, t)
        if rrset is not None:
            response.answer.append(rrset)
            return response
        exists = (current in self.names or current in self.ents)
        if not exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(self._negative_soa(self._zone_of(current) or zone))
        return response

    def _lookup(self, name: str, qtype: int, view: str, t: float) -> dns.rrset.RRset | None:
        if name in self.cnames and qtype == dns.rdatatype.CNAME:
            there, ttl = self.cnames[name]
            return self._rrset(name, qtype, ttl, [there + "."])
        if name in self.a_owners and qtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            target = self.a_owners[name]
            answer = of_type(addresses_at(target, view, t), dns.rdatatype.to_text(qtype))
            addrs = sorted(answer, key=address_key)
            return self._rrset(name, qtype, target.ttl, addrs) if addrs else None
        hit = self.static.get((name, qtype))
        if hit is None:
            return None
        ttl, texts = hit
        return self._rrset(name, qtype, ttl, texts)

    def _rrset(self, name: str, qtype: int, ttl: int, texts: list[str]) -> dns.rrset.RRset:
        return dns.rrset.from_text_list(name + ".", self.ttl(ttl), dns.rdataclass.IN, qtype, texts)

    def _negative_soa(self, apex: str) -> dns.rrset.RRset:
        neg = self.scenario.negative_ttl
        return dns.rrset.from_text_list(
            apex + ".", self.ttl(neg), dns.rdataclass.IN, dns.rdatatype.SOA,
            [f"ns1.{self.origin}. hostmaster.{self.origin}. 1 3600 600 86400 {self.ttl(neg)}"])


def to_wire_limited(query: dns.message.Message, response: dns.message.Message, udp: bool) -> bytes:
    """Wire form; over UDP an answer larger than the requester offers is cut to TC=1 + question."""
    if not udp:
        return response.to_wire(max_size=65535)
    limit = 512
    if query.edns >= 0:
        limit = max(512, min(query.payload, UDP_CAP))
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer.clear()
        response.authority.clear()
        response.additional.clear()
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=limit)


def _parents(name: str, apex: str) -> list[str]:
    """Proper ancestors of `name` down to and including the zone apex (empty non-terminals)."""
    out = []
    labels = name.split(".")
    for i in range(1, len(labels)):
        parent = ".".join(labels[i:])
        out.append(parent)
        if parent == apex:
            break
    return out
