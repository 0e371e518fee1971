"""The probes of one process, bound once to the configuration: ``Probes``.

The cycle, ``edgewatch check`` and the benchmarks ask the same three questions — what does this
resolver answer (``dns``), does this address serve the target (``connect``), what is its PTR name
(``ptr``) — under the same timeouts and TLS contexts. Binding those once here means no caller
wires a timeout or a CA of its own (``check`` once verified DoT/DoH resolvers against the system
store where ``run`` used ``tls.ca_file``), and a test can hand the cycle canned probe functions
without a network: the functions are injectable, the binding stays the same.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.config import Config, Resolver, Target, Timeouts
from pipeline.probe.connect import ConnectResult, ConnectSpec, probe_connect, tls_contexts
from pipeline.probe.dns import DnsOptions, DnsResult, ask_dns, make_query, probe_dns
from pipeline.probe.dns_answer import classify_message
from pipeline.probe.rdns import RdnsResult, ReverseLookup

# ``probe_dns``'s shape: (resolver, qname, rtype, timeout, keep_raw=, ssl_context=)
DnsProbe = Callable[..., Awaitable[DnsResult]]
# ``probe_connect``'s shape: (address, port, server_name, spec)
ConnectProbe = Callable[[str, int, str, ConnectSpec], Awaitable[ConnectResult]]
PtrProbe = Callable[[str], Awaitable[RdnsResult]]


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """Everything a probe call needs beside its question, fixed for the process."""

    dns: DnsOptions
    connect: ConnectSpec  # http_path is the target's, set per call
    reverse: ReverseLookup | None = None

    @classmethod
    def from_config(cls, config: Config, now: Callable[[], float] = time.time
                    ) -> ProbeSettings:
        """The configured timeouts, ``tls.ca_file`` for edges and DoT/DoH resolvers alike, and
        the reverse lookup when ``rdns`` is enabled with a resolver."""
        t = config.timeouts
        contexts = tls_contexts(config.tls_ca_file)
        reverse = None
        if config.rdns_enabled and config.rdns_resolver:
            reverse = ReverseLookup(config.rdns_resolver, t.dns, now=now)
        source = config.source_address
        return cls(DnsOptions(t.dns, config.keep_raw_answers, contexts[0], source),
                   ConnectSpec(contexts, t.connect, t.tls, None, t.http, source), reverse)

    @classmethod
    def adhoc(cls, timeouts: Timeouts, ca_file: Path | None,
              rdns_server: tuple[str, int] | None) -> ProbeSettings:
        """For one ad-hoc check: the given timeouts, CA bundle (a path or None) and PTR
        server."""
        contexts = tls_contexts(ca_file)
        reverse = ReverseLookup(rdns_server, timeouts.dns) if rdns_server else None
        return cls(DnsOptions(timeouts.dns, False, contexts[0]),
                   ConnectSpec(contexts, timeouts.connect, timeouts.tls, None, timeouts.http),
                   reverse)


class Probes:
    """The three probes, bound to one ``ProbeSettings``.

    ``dns``/``connect``/``ptr`` given to the constructor replace the real probe functions (same
    shapes as ``probe_dns``, ``probe_connect`` and ``ReverseLookup.lookup``); ``ptr`` replaces
    the configured reverse lookup. Built without settings, the object is bound by ``bind`` —
    the cycle binds what it is given to its configuration.
    """

    __slots__ = ("_connect", "_dns", "_ptr", "settings")

    def __init__(self, dns: DnsProbe = probe_dns, connect: ConnectProbe = probe_connect,
                 ptr: PtrProbe | None = None, settings: ProbeSettings | None = None) -> None:
        self._dns, self._connect, self._ptr = dns, connect, ptr
        self.settings = settings

    @classmethod
    def from_config(cls, config: Config, now: Callable[[], float] = time.time) -> Probes:
        return cls(settings=ProbeSettings.from_config(config, now))

    def bind(self, config: Config, now: Callable[[], float] = time.time) -> Probes:
        """These probe functions under ``config`` (self if already bound)."""
        if self.settings is not None:
            return self
        return Probes(self._dns, self._connect, self._ptr,
                      ProbeSettings.from_config(config, now))

    def _bound(self) -> ProbeSettings:
        if self.settings is None:
            raise RuntimeError("Probes used before bind(config)")
        return self.settings

    # The pieces of a DNS probe, for what measures them alone (bench/probe_ops.py): the
    # question exactly as ``dns`` sends it, and the classification of a response.
    question = staticmethod(make_query)
    classify = staticmethod(classify_message)

    @property
    def reverse_enabled(self) -> bool:
        return self._ptr is not None or self._bound().reverse is not None

    async def dns(self, resolver: Resolver, name: str, rtype: str) -> DnsResult:
        o = self._bound().dns
        if self._dns is probe_dns:  # the real probe takes every option, the source included
            return await ask_dns(resolver, name, rtype, o)
        return await self._dns(resolver, name, rtype, o.timeout, keep_raw=o.keep_raw,
                               ssl_context=o.ssl_context)

    async def connect(self, address: str, target: Target) -> ConnectResult:
        spec = self._bound().connect
        if spec.http_path != target.http_path:  # most targets have none: no copy per check
            spec = replace(spec, http_path=target.http_path)
        return await self._connect(address, target.port, target.server_name, spec)

    async def ptr(self, address: str) -> RdnsResult:
        if self._ptr is not None:
            return await self._ptr(address)
        reverse = self._bound().reverse
        if reverse is None:
            raise RuntimeError("no reverse lookup configured")
        return await reverse.lookup(address)
