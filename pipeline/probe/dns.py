"""Ask one resolver one question, and say exactly what came back.

Every outcome is a value, never an exception: a timeout, a SERVFAIL or an unreachable resolver is
a measurement like any other, and the cycle must not stop for it. The CNAME chain is followed
inside the answer section, from the question name to the final owner of the addresses, because
that chain (``…edgekey.net`` → ``e1234.a.akamaiedge.net``) is what tells which CDN map served it.

The work is split so each part can be tried alone against hostile peers: ``dns_wire`` holds each
question's wire form (built once, a fresh id per send), ``dns_exchange`` sends plain DNS under
one deadline, ``dns_read`` reads the answer through dnspython's wire parser for just what a
check needs, ``dns_answer`` classifies a response without I/O, and this module picks the
transport and is the boundary: whatever escapes the parts (a bug, a library's surprise) is still
returned as a classified ``dns.unexpected`` result.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.query

from pipeline.config import Resolver
from pipeline.probe.dns_answer import AnswerAddress, AnswerRecord, classify_message
from pipeline.probe.dns_exchange import ExchangeError, Response, exchange_wire
from pipeline.probe.dns_wire import BadName, build_query, new_id, query_wire
from pipeline.probe.source import local_addr

__all__ = ["AnswerAddress", "BadName", "DnsOptions", "DnsResult", "ask_dns", "make_query",
           "probe_dns"]

# DoT/DoH bound their own steps by the timeout; this margin only catches a library that does not.
_ENCRYPTED_GRACE = 0.25


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
    # the answer section as sent (ECS dns.answers), CNAMEs and records of other classes included
    answers: tuple[AnswerRecord, ...] = ()

    @property
    def ok(self) -> bool:
        """A usable answer: it ends runs of addresses it lacks and extends those it has."""
        return self.error_type is None and bool(self.addresses)

    @property
    def address_set(self) -> frozenset[str]:
        return frozenset(a.address for a in self.addresses)


def make_query(qname: str, rtype: str, resolver: Resolver) -> dns.message.QueryMessage:
    """The question as ``probe_dns`` asks it (EDNS, the resolver's client subnet); raises
    ``BadName`` for a name that cannot be asked. UDP and TCP send its cached wire form."""
    return build_query(qname, rtype, resolver.client_subnet)


async def _send_encrypted(
    query: dns.message.QueryMessage, resolver: Resolver, timeout: float,
    ssl_context: ssl.SSLContext | None, source: str | None = None,
) -> tuple[dns.message.Message, bool]:
    where, port = resolver.address, resolver.port
    bind = local_addr(source, where)
    if resolver.transport == "dot":
        ctx = ssl_context or ssl.create_default_context()
        return await dns.asyncquery.tls(
            query, where, timeout=timeout, port=port, ssl_context=ctx,
            server_hostname=resolver.server_name, source=bind[0] if bind else None,
        ), False
    if resolver.transport == "doh":
        # The URL names the server (SNI, certificate, Host); the configured address is where
        # to connect, so no system resolver is involved in reaching a DoH resolver.
        return await dns.asyncquery.https(
            query, resolver.url or where, timeout=timeout, port=port, bootstrap_address=where,
            verify=ssl_context or True, source=bind[0] if bind else None,
        ), False
    raise ValueError(f"unknown transport {resolver.transport!r}")




def _elapsed_us(started: float) -> int:
    return int((time.perf_counter() - started) * 1e6)


async def _ask(resolver: Resolver, qname: str, rtype: str, options: DnsOptions,
               base: dict[str, Any], started: float) -> tuple[Response, bool] | DnsResult:
    """The response and whether TCP carried it, or the classified failure (``BadName`` is
    raised for a question that cannot be asked)."""
    timeout = options.timeout
    if resolver.transport in ("udp", "tcp"):
        query = query_wire(qname, rtype, resolver.client_subnet)
        try:
            ex = await exchange_wire(query, new_id(), (resolver.address, resolver.port), timeout,
                                     tcp_only=resolver.transport == "tcp", source=options.source)
        except ExchangeError as exc:
            return DnsResult(**base, error_type=exc.error_type, error_message=exc.message,
                             rtt_us=_elapsed_us(started) if exc.error_type == "dns.timeout"
                             else None)
        except (ConnectionRefusedError, ConnectionResetError) as exc:
            return DnsResult(**base, error_type="dns.network",
                             error_message=str(exc) or "refused")
        except OSError as exc:
            return DnsResult(**base, error_type="dns.network", error_message=str(exc))
        return ex.response, ex.tcp
    query_message = make_query(qname, rtype, resolver)
    try:
        async with asyncio.timeout(timeout + _ENCRYPTED_GRACE):
            return await _send_encrypted(query_message, resolver, timeout, options.ssl_context,
                                         options.source)
    except (dns.exception.Timeout, TimeoutError):
        return DnsResult(**base, error_type="dns.timeout",
                         error_message=f"no answer within {timeout:g}s",
                         rtt_us=_elapsed_us(started))
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
        # DoH transports raise their HTTP library's own errors (connect, TLS, protocol).
        return DnsResult(**base, error_type="dns.network",
                         error_message=f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True, slots=True)
class DnsOptions:
    """How every query of a cycle is asked: its timeout, whether the raw answer is kept, and
    the context that verifies DoT/DoH resolvers (``None``: the system trust store)."""

    timeout: float
    keep_raw: bool = False
    ssl_context: ssl.SSLContext | None = None
    source: str | None = None  # [probe] source_address: the address queries leave from


async def _probe(resolver: Resolver, qname: str, rtype: str, options: DnsOptions,
                 base: dict[str, Any], started: float) -> DnsResult:
    try:
        asked = await _ask(resolver, qname, rtype, options, base, started)
    except BadName as exc:
        return DnsResult(**base, error_type="dns.bad_name", error_message=str(exc))
    if isinstance(asked, DnsResult):
        return asked
    response, used_tcp = asked
    rtt_us = _elapsed_us(started)
    answer = classify_message(response, qname, rtype)
    return DnsResult(
        **base,
        rcode=answer.rcode,
        flags=answer.flags,
        addresses=answer.addresses,
        cname_chain=answer.cname_chain,
        rtt_us=rtt_us,
        ecs_source_prefix=answer.ecs_source_prefix,
        ecs_scope_prefix=answer.ecs_scope_prefix,
        tcp_fallback=used_tcp,
        error_type=answer.error_type,
        error_message=answer.error_message,
        raw=_raw(response) if options.keep_raw else None,
        answers=answer.records,
    )


def _raw(response: Response) -> bytes:
    """The answer as ``dns.raw`` has always kept it: dnspython's rendering of the message."""
    if isinstance(response, dns.message.Message):
        return response.to_wire()
    return response.wire_message().to_wire()


async def probe_dns(
    resolver: Resolver, qname: str, rtype: str, timeout: float, keep_raw: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> DnsResult:
    """One query; the result classifies every way it can go wrong, and it never raises.

    ``timeout`` bounds the whole query, the TCP retry of a truncated answer included.
    ``ssl_context`` verifies a DNS-over-TLS or -HTTPS resolver (default: the system trust
    store). DNS over HTTPS needs the ``doh`` extra (dnspython[doh]).
    """
    return await ask_dns(resolver, qname, rtype, DnsOptions(timeout, keep_raw, ssl_context))


async def ask_dns(resolver: Resolver, qname: str, rtype: str, options: DnsOptions
                  ) -> DnsResult:
    """``probe_dns`` with every option at once (``options.source``: the address the query
    leaves from, ``[probe] source_address``)."""
    base: dict[str, Any] = {"resolver": resolver, "qname": qname, "rtype": rtype}
    started = time.perf_counter()
    try:
        return await _probe(resolver, qname, rtype, options, base, started)
    except Exception as exc:  # the boundary: a measurement never escapes as an exception
        return DnsResult(**base, error_type="dns.unexpected",
                         error_message=f"{type(exc).__name__}: {exc}",
                         rtt_us=_elapsed_us(started))
