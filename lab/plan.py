"""The lab's loopback address plan.

    127.O.0.1:53      authoritative server (O = plan octet, 53 by default)
    127.O.1.N:53      resolver N as clients see it (daemon, or the fault shim in front of it)
    127.O.2.N         resolver N's outgoing interface: the authoritative server picks the view
                      from this source address
    127.O.3.N:53      resolver N's daemon when a shim sits in front of it
    edge addresses    from the scenario's networks, TLS on `edge_port` (443)

The octet and edge port can move so two labs (say, two engineers' test runs) can share a machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.scenario import Resolver, Scenario


@dataclass(frozen=True)
class ResolverPlan:
    """Where one resolver lives."""

    name: str
    index: int
    listen: str  # what clients query
    outgoing: str  # source address of its queries to the authoritative server
    daemon: str  # where the daemon itself listens (== listen unless shimmed)
    port: int
    shimmed: bool


@dataclass(frozen=True)
class AddressPlan:
    """All addresses of one lab instance."""

    octet: int = 53
    dns_port: int = 53
    edge_port: int = 443

    @property
    def auth(self) -> str:
        return f"127.{self.octet}.0.1"

    def resolver(self, index: int, resolver: Resolver) -> ResolverPlan:
        listen = f"127.{self.octet}.1.{index}"
        shimmed = resolver.faults is not None
        return ResolverPlan(
            name=resolver.name,
            index=index,
            listen=listen,
            outgoing=f"127.{self.octet}.2.{index}",
            daemon=f"127.{self.octet}.3.{index}" if shimmed else listen,
            port=self.dns_port,
            shimmed=shimmed,
        )

    def resolvers(self, scenario: Scenario) -> list[ResolverPlan]:
        if len(scenario.resolvers) > 250:
            raise ValueError("at most 250 resolvers fit the address plan")
        return [self.resolver(i + 1, r) for i, r in enumerate(scenario.resolvers)]

    def to_dict(self) -> dict[str, int]:
        return {"octet": self.octet, "dns_port": self.dns_port, "edge_port": self.edge_port}

    @classmethod
    def from_dict(cls, raw: dict[str, int]) -> AddressPlan:
        return cls(**{k: int(v) for k, v in raw.items()})
