"""The pieces of a DNS probe timed alone, old against new, alternating: no network at all.

    .venv/bin/python bench/bench_dns_read.py [--calls 3000] [--rounds 5]

The answer is shaped like unbound's in the lab (two CNAMEs, three A records, OPT, compressed
names) and rendered by dnspython. Per round, each piece runs ``--calls`` times, the pieces in
a rotating order; the report gives the median CPU µs per call and the ratio new / old.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dns.message
import dns.rrset
from probe_common import ROOT  # noqa: F401  (puts the project on sys.path)

from pipeline.config import Resolver
from pipeline.probe.dns import make_query
from pipeline.probe.dns_answer import classify_message
from pipeline.probe.dns_read import read_message
from pipeline.probe.dns_wire import new_id, query_wire

QNAME = "acme-v02.api.lab.test"


def lab_answer() -> bytes:
    query = dns.message.make_query(QNAME, "A", use_edns=0, payload=1232)
    response = dns.message.make_response(query)
    for owner, rtype, ttl, data in [
            (QNAME, "CNAME", 300, "acme-v02.api.lab.test.edgekey.lab.test."),
            ("acme-v02.api.lab.test.edgekey.lab.test", "CNAME", 60, "e1234.a.akamaiedge.lab.test."),
            ("e1234.a.akamaiedge.lab.test", "A", 20, "127.60.0.10"),
            ("e1234.a.akamaiedge.lab.test", "A", 20, "127.60.0.11"),
            ("e1234.a.akamaiedge.lab.test", "A", 20, "127.60.0.12")]:
        response.answer.append(dns.rrset.from_text(owner + ".", ttl, "IN", rtype, data))
    return response.to_wire()


def cpu_us(fn: Callable[[], object], n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    wire = lab_answer()
    resolver = Resolver("r", "127.0.0.1", 53)
    ref, fast = dns.message.from_wire(wire), read_message(wire)
    assert classify_message(ref, QNAME, "A") == classify_message(fast, QNAME, "A")
    pieces: dict[str, Callable[[], object]] = {
        "query: make_query + to_wire (old)": lambda: make_query(QNAME, "A", resolver).to_wire(),
        "query: cached wire form + fresh id (new)":
            lambda: query_wire(QNAME, "A", None).with_id(new_id()),
        "answer: dns.message.from_wire (old)": lambda: dns.message.from_wire(wire),
        "answer: dns_read.read_message (new)": lambda: read_message(wire),
        "classify from_wire's message": lambda: classify_message(ref, QNAME, "A"),
        "classify read_message's message": lambda: classify_message(fast, QNAME, "A"),
    }
    names = list(pieces)
    got: dict[str, list[float]] = {k: [] for k in names}
    for i in range(args.rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            got[name].append(cpu_us(pieces[name], args.calls))
    med = {k: statistics.median(v) for k, v in got.items()}
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"{len(wire)}-byte answer, {args.calls} calls x {args.rounds} rounds, "
          f"load {' '.join(load)}\n\n| piece | CPU µs per call (median) |\n|---|---|")
    for k in names:
        print(f"| {k} | {med[k]:,.1f} |")
    old = med[names[0]] + med[names[2]] + med[names[4]]
    new = med[names[1]] + med[names[3]] + med[names[5]]
    print(f"\nbuild + read + classify: old {old:,.0f} µs, new {new:,.0f} µs, "
          f"new / old = **{new / old:.2f}**")
    return 0


if __name__ == "__main__":
    sys.exit(main())
