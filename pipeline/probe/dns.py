"""Ask one resolver one question, and say exactly what came back.

Every outcome is a value, never an exception: a timeout, a SERVFAIL or an unreachable resolver is
a measurement like any other, and the cycle must not stop for it. The CNAME chain is followed
inside the answer section, from the question name to the final owner of the addresses, because
that chain (``…edgekey.net`` → ``e1234.a.akamaiedge.net``) is what tells which CDN map served it.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field

import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from pipeline.config import Resolver


@dataclass(frozen=True, slots=True)
class AnswerAddress:
    address: str
    ttl: int


@dataclass(frozen=True, slots=True)
class DnsResult:
    resolver: Resolver
    qname: str
    rtype: str
    rcode: str | None = None
    flags: tuple[str, ...] = ()
    addresses: tuple[AnswerAddress, ...] = ()
    cname_chain: tuple[str, ...] = ()
    rtt_us: int | None = None
    ecs_source_prefix: int | None = None
    ecs_scope_prefix: int | None = None
    tcp_fallback: bool = False
    error_type: str | None = None
    error_message: str | None = None
    raw: bytes | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """A usable answer: it ends runs of addresses it lacks and extends those it has."""
        return self.error_type is None and bool(self.addresses)

    @property
    def address_set(self) -> frozenset[str]:
        return frozenset(a.address for a in self.addresses)


_RCODE_ERRORS = {
    dns.rcode.SERVFAIL: "dns.servfail",
    dns.rcode.NXDOMAIN: "dns.nxdomain",
    dns.rcode.REFUSED: "dns.refused",
    dns.rcode.FORMERR: "dns.formerr",
    dns.rcode.NOTIMP: "dns.notimp",
}


def _make_query(qname: str, rtype: str, resolver: Resolver) -> dns.message.QueryMessage:
    options: list[dns.edns.Option] = []
    if resolver.client_subnet:
        net = ipaddress.ip_network(resolver.client_subnet, strict=False)
        options.append(dns.edns.ECSOption(str(net.network_address), net.prefixlen))
    return dns.message.make_query(
        qname, rtype, use_edns=0, payload=1232, options=options or None
    )


def _follow_chain(
    response: dns.message.Message, qname: str, rtype: str
) -> tuple[tuple[str, ...], tuple[AnswerAddress, ...]]:
    rdtype = dns.rdatatype.from_text(rtype)
    current = dns.name.from_text(qname)
    chain = [current.to_text(omit_final_dot=True)]
    seen = {current}
    for _ in range(16):  # a longer chain is a loop or an attack; stop following
        cname = next(
            (r for r in response.answer
             if r.name == current and r.rdtype == dns.rdatatype.CNAME),
            None,
        )
        if cname is None:
            break
        current = cname[0].target
        if current in seen:
            break
        seen.add(current)
        chain.append(current.to_text(omit_final_dot=True))
    addresses: list[AnswerAddress] = []
    if rdtype not in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return tuple(chain), ()
    for rrset in response.answer:
        if rrset.name == current and rrset.rdtype == rdtype:
            addresses.extend(AnswerAddress(r.address, rrset.ttl) for r in rrset)
    return tuple(chain), tuple(addresses)


def _flags(response: dns.message.Message) -> tuple[str, ...]:
    names = []
    for flag in ("AA", "TC", "RD", "RA", "AD", "CD"):
        if response.flags & getattr(dns.flags, flag):
            names.append(flag)
    if response.ednsflags & dns.flags.DO:
        names.append("DO")
    return tuple(names)


def _ecs(response: dns.message.Message) -> tuple[int | None, int | None]:
    for opt in response.options:
        if isinstance(opt, dns.edns.ECSOption):
            return opt.srclen, opt.scopelen
    return None, None


async def _send(
    query: dns.message.QueryMessage, resolver: Resolver, timeout: float,
    ssl_context: ssl.SSLContext | None,
) -> tuple[dns.message.Message, bool]:
    where, port = resolver.address, resolver.port
    if resolver.transport == "udp":
        return await dns.asyncquery.udp_with_fallback(query, where, timeout=timeout, port=port)
    if resolver.transport == "tcp":
        return await dns.asyncquery.tcp(query, where, timeout=timeout, port=port), False
    if resolver.transport == "dot":
        ctx = ssl_context or ssl.create_default_context()
        return await dns.asyncquery.tls(
            query, where, timeout=timeout, port=port, ssl_context=ctx,
            server_hostname=resolver.server_name,
        ), False
    if resolver.transport == "doh":
        # The URL names the server (SNI, certificate, Host); the configured address is where
        # to connect, so no system resolver is involved in reaching a DoH resolver.
        return await dns.asyncquery.https(
            query, resolver.url or where, timeout=timeout, port=port, bootstrap_address=where,
            verify=ssl_context or True,
        ), False
    raise ValueError(f"unknown transport {resolver.transport!r}")


async def probe_dns(
    resolver: Resolver, qname: str, rtype: str, timeout: float, keep_raw: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> DnsResult:
    """One query; the result classifies every way it can go wrong.

    ``ssl_context`` verifies a DNS-over-TLS or -HTTPS resolver (default: the system trust
    store). DNS over HTTPS needs the ``doh`` extra (dnspython[doh]).
    """
    query = _make_query(qname, rtype, resolver)
    base = {"resolver": resolver, "qname": qname, "rtype": rtype}
    started = time.perf_counter()
    try:
        response, used_tcp = await _send(query, resolver, timeout, ssl_context)
    except dns.exception.Timeout:
        return DnsResult(**base, error_type="dns.timeout",
                         error_message=f"no answer within {timeout:g}s",
                         rtt_us=int((time.perf_counter() - started) * 1e6))
    except (ConnectionRefusedError, ConnectionResetError) as exc:
        return DnsResult(**base, error_type="dns.network", error_message=str(exc) or "refused")
    except (OSError, socket.gaierror, ssl.SSLError, EOFError) as exc:
        return DnsResult(**base, error_type="dns.network", error_message=str(exc))
    except dns.query.NoDOH:
        return DnsResult(**base, error_type="dns.unsupported",
                         error_message="DNS over HTTPS needs the doh extra: "
                         "pip install 'edgewatch[doh]'")
    except dns.exception.DNSException as exc:
        return DnsResult(**base, error_type="dns.malformed", error_message=str(exc))
    except Exception as exc:
        # DoH transports raise their HTTP library's own errors (connect, TLS, protocol); a
        # measurement never escapes the cycle as an exception.
        return DnsResult(**base, error_type="dns.network",
                         error_message=f"{type(exc).__name__}: {exc}")
    rtt_us = int((time.perf_counter() - started) * 1e6)
    rcode = response.rcode()
    chain, addresses = _follow_chain(response, qname, rtype)
    src, scope = _ecs(response)
    error_type = _RCODE_ERRORS.get(rcode)
    if error_type is None and rcode != dns.rcode.NOERROR:
        error_type = f"dns.{dns.rcode.to_text(rcode).lower()}"
    if error_type is None and not addresses:
        error_type = "dns.nodata"
    return DnsResult(
        **base,
        rcode=dns.rcode.to_text(rcode),
        flags=_flags(response),
        addresses=addresses,
        cname_chain=chain,
        rtt_us=rtt_us,
        ecs_source_prefix=src,
        ecs_scope_prefix=scope,
        tcp_fallback=used_tcp,
        error_type=error_type,
        error_message=None if error_type is None else f"{dns.rcode.to_text(rcode)} from resolver",
        raw=response.to_wire() if keep_raw else None,
    )
