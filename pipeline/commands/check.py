"""``edgewatch check HOST``: one ad-hoc check, printed for a person at a terminal.

Nothing is stored and no run state is touched: this answers "what does each resolver say right
now, and does each address really serve the name?" while someone is debugging a firewall rule.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.commands._common import load_netinfo_or_exit, load_or_exit, resolve_config_path
from pipeline.config import (
    MAX_PROBE_TIMEOUT_S,
    Resolver,
    Target,
    Timeouts,
    ca_file_problem,
    hostname_problem,
    http_path_problem,
    parse_host_port,
)

if TYPE_CHECKING:  # the probe (dnspython, its QUIC support) loads when a check runs, not for
    # every command's parser: `edgewatch report` and the rest start without it
    from pipeline.probe.connect import ConnectResult
    from pipeline.probe.dns import DnsResult
    from pipeline.probe.netinfo import NetinfoTable
    from pipeline.probe.probes import Probes

EPILOG = """\
exit status:
  0  at least one resolver answered with an address (the table shows every address, failed
     connections included)
  1  no resolver answered with an address: every one timed out, refused, failed, or said the
     name has no such record
  2  bad input or configuration (one line on stderr says which and why)
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="one ad-hoc check of HOST through the resolvers, as a table",
        description="Ask each resolver for HOST once, then connect to every answered address "
        "(TCP, TLS with SNI=HOST, certificate verification) and print a table. Resolvers come "
        "from --resolver, else from the configuration, else the system resolver.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("host", help="hostname to check, e.g. acme-v02.api.letsencrypt.org")
    p.add_argument("-c", "--config", type=Path, help="configuration file (resolvers, CA, "
                   "netinfo table, timeouts)")
    p.add_argument("-r", "--resolver", action="append", default=[], metavar="ADDR[:PORT]",
                   help="resolver to ask (repeatable)")
    p.add_argument("-t", "--type", default="A", choices=("A", "AAAA"), help="record type")
    p.add_argument("-p", "--port",  # checked in _validate: a bad value is one line, not usage
                   help="port to connect to (default: the configured target's, else 443)")
    p.add_argument("--ca-file", type=Path, help="CA bundle to verify the edge certificates")
    p.add_argument("--http-path", help="also GET this path over TLS, e.g. /directory")
    p.add_argument("--timeout", metavar="SECONDS",
                   help="timeout of every phase (DNS, connect, TLS, HTTP); default: the "
                   "configuration's, else 2-5 s")
    p.set_defaults(func=run)


def _parse_resolver(text: str) -> Resolver:
    """``ADDRESS[:PORT]`` by the configuration's own parser; ValueError with the reason."""
    host, port = parse_host_port(text)
    return Resolver(name=text, address=host, port=port)


class _Usage(Exception):
    """A bad argument: printed as one line, exit status 2."""


def _validate(args: argparse.Namespace) -> list[Resolver]:
    """Every argument checked before anything is sent; raises _Usage naming the bad one."""
    if why := hostname_problem(args.host):
        raise _Usage(f"HOST: {why}")
    if args.port is not None:
        if not re.fullmatch(r"[0-9]{1,6}", args.port) or not 1 <= int(args.port) <= 65535:
            raise _Usage(f"--port {args.port}: must be 1..65535")
        args.port = int(args.port)
    if args.ca_file is not None and (why := ca_file_problem(args.ca_file)):
        raise _Usage(f"--ca-file: {why}")
    if args.timeout is not None:
        try:
            seconds = float(args.timeout)
        except ValueError:
            seconds = math.nan
        if not 0 < seconds <= MAX_PROBE_TIMEOUT_S:  # NaN fails this too
            raise _Usage(f"--timeout {args.timeout}: must be a number of seconds, more than 0 "
                         f"and at most {MAX_PROBE_TIMEOUT_S:g}")
        args.timeout = seconds
    if args.http_path is not None and (why := http_path_problem(args.http_path)):
        raise _Usage(f"--http-path {args.http_path!r}: {why}")
    resolvers = []
    for text in args.resolver:
        try:
            resolvers.append(_parse_resolver(text))
        except ValueError as exc:
            raise _Usage(f"--resolver {text!r}: {exc}") from None
    return resolvers


def _system_resolvers() -> list[Resolver]:
    out = []
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                out.append(Resolver(name=f"system {parts[1]}", address=parts[1]))
    except OSError:
        pass
    return out


def _ms(us: int | None) -> str:
    return "-" if us is None else f"{us / 1000:.1f}"


async def _check(probes: Probes, resolvers: list[Resolver], target: Target,
                 netinfo: NetinfoTable | None) -> tuple[str, bool]:
    """The table, and whether any resolver answered with an address."""
    host = target.name
    answers: list[DnsResult] = await asyncio.gather(
        *(probes.dns(r, host, target.record_types[0]) for r in resolvers)
    )
    addresses = sorted({a.address for res in answers for a in res.addresses})
    conns: list[ConnectResult] = await asyncio.gather(
        *(probes.connect(a, target) for a in addresses))
    ptrs = {}
    if probes.reverse_enabled:
        for r in await asyncio.gather(*(probes.ptr(a) for a in addresses)):
            ptrs[r.address] = r.hostname
    lines = [f"{host} {target.record_types[0]}", ""]
    rows = [("resolver", "rcode", "ms", "answer (ttl)", "chain")]
    for res in answers:
        ans = " ".join(f"{a.address}({a.ttl})" for a in res.addresses) or (res.error_type or "-")
        chain = " > ".join(res.cname_chain[1:]) or "-"
        rows.append((res.resolver.name, res.rcode or "-", _ms(res.rtt_us), ans, chain))
    lines += [*_table(rows), ""]
    rows = [("address", "tcp ms", "tls ms", "tls", "verified", "certificate", "edge host",
             "network", "result")]
    for c in conns:
        cert = c.certificate.subject_cn if c.certificate else "-"
        net = "-"
        if netinfo:
            info = netinfo.lookup(c.address)
            net = f"AS{info.asn} {info.prefix}" if info.asn else "-"
        rows.append((c.address, _ms(c.tcp_connect_us), _ms(c.tls_handshake_us),
                     c.tls_version or "-", "yes" if c.tls_verified else "no", cert or "-",
                     ptrs.get(c.address) or "-", net,
                     "ok" if c.ok else f"{c.error_type}: {c.error_message}"))
    lines += _table(rows)
    return "\n".join(lines), bool(addresses)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def run(args: argparse.Namespace) -> int:
    timeouts, ca_file, netinfo, rdns_server = Timeouts(), args.ca_file, None, None
    try:
        resolvers = _validate(args)
    except _Usage as exc:
        print(f"edgewatch check: {exc}", file=sys.stderr)
        return 2
    port, http_path = args.port, args.http_path  # as validated: the port is an int now
    if args.config or resolve_config_path(None):
        cfg = load_or_exit(args.config, writes=False)
        timeouts, ca_file = cfg.timeouts, ca_file or cfg.tls_ca_file
        netinfo = load_netinfo_or_exit(cfg.netinfo_table) if cfg.netinfo_table else None
        rdns_server = cfg.rdns_resolver
        resolvers = resolvers or list(cfg.resolvers)
        known = next((t for t in cfg.targets if t.name.lower() == args.host.rstrip(".").lower()),
                     None)
        if known is not None:
            port = port or known.port
            http_path = http_path or known.http_path
    if args.timeout is not None:
        timeouts = Timeouts(args.timeout, args.timeout, args.timeout, args.timeout)
    resolvers = resolvers or _system_resolvers()
    if not resolvers:
        print("edgewatch check: no resolver: pass --resolver or --config", file=sys.stderr)
        return 2
    rdns_server = rdns_server or (resolvers[0].address, resolvers[0].port)
    target = Target(name=args.host.rstrip("."), record_types=(args.type,), port=port or 443,
                    http_path=http_path)
    # The same binding as ``run``: the configured (or given) CA verifies the edges and the
    # DoT/DoH resolvers alike.
    from pipeline.probe.probes import Probes, ProbeSettings

    probes = Probes(settings=ProbeSettings.adhoc(timeouts, ca_file, rdns_server))
    table, answered = asyncio.run(_check(probes, resolvers, target, netinfo))
    print(table)
    if not answered:
        print(f"edgewatch check: no resolver answered {target.name} {args.type} with an address",
              file=sys.stderr)
    return 0 if answered else 1
