"""Probe cost: edgewatch cycles against the lab, and the same probes done by peer tools.

    .venv/bin/python bench/bench_probe.py [--cycles 60] [--probes 1000] [--budget 900] [--no-peers]
    .venv/bin/python bench/bench_probe.py --dns-only --probes 500   # the DNS comparison alone

Starts the study-14d lab (14 real resolvers, TLS edges, all on loopback) in a temporary folder
and tears it down at the end, whatever happened. Then, in this order:

1. edgewatch cycles: one warm-up cycle, then ``--cycles`` cycles back to back in-process (no
   scheduler) with the lab's own config and timeouts and an ndjson sink in the temp folder.
   Real seconds and process CPU seconds per cycle come from ``CycleStats``.
2. cProfile (CPU-time timer) over ``--profile-cycles`` further cycles: where the CPU goes; then
   the pieces of one DNS probe and one TLS check (query building, answer parsing, certificate
   description, a blocking vs an asyncio handshake), each timed alone.
3. The same single operations done by edgewatch's probe functions and by peers, CPU per op:
   * DNS: A of the lab hostname through one fault-free lab resolver (``--resolver``);
   * TCP+TLS: a verifying handshake (lab CA, the hostname as SNI) with one "ok" edge;
   * TCP+TLS+HTTP: the same plus ``GET /directory``.
   edgewatch runs ``probe_dns``/``probe_connect`` in this process (CPU from
   ``time.process_time``); the peer is Debian's ``prometheus-blackbox-exporter`` on 127.0.0.1,
   driven through ``/probe?module=…&target=…`` with the same count and concurrency, its CPU read
   from ``/proc/<pid>/stat`` (utime+stime, all threads; the driver's own CPU is not counted).
   Its sockets are sampled while it runs and any remote address off loopback is reported.
4. DNS throughput: ``dnsperf`` against the same resolver for a fixed query count, and the same
   count of concurrent ``probe_dns`` calls; q/s and CPU per query of each (dnsperf's CPU from
   its rusage).
5. Sequential TLS handshakes: ``openssl s_time -new`` against the same edge for a few seconds,
   and the same number of sequential ``probe_connect`` calls.

6. With ``--dns-only`` (or ``--dns-rounds N``): the DNS comparison of bench/probe_dns.py —
   the previous ``probe_dns`` (``--baseline``, read from git), today's on asyncio and on uvloop,
   blackbox_exporter, alternating round by round, then dnsdiag's ``dnseval``.

Every loop is bounded by a count and by a deadline (``--budget`` caps the whole run). All
traffic goes to the lab's loopback addresses; the script refuses a config that points elsewhere.
Progress goes to stderr; a Markdown report goes to stdout (``--json`` also saves raw figures).
Wall times on a shared 2-core machine are noisy; CPU time per operation is the figure to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import probe_dns
from peer_blackbox import Blackbox, SocketWatch
from peer_tools import dnsperf, s_time
from probe_common import Budget, Work, is_loopback, log, loopback_only, proc_cpu
from probe_cycles import profile_cycles, run_cycles
from probe_ops import breakdown, ew_ops
from probe_report import loadavg, machine_facts, report

from lab.stack import LabStack
from pipeline.config import load_config


def lab_cpu(lab: LabStack) -> dict[str, float]:
    """CPU seconds so far of the lab's processes: its Python servers, and resolvers by kind."""
    totals: dict[str, float] = {}
    kinds = {r.name: r.software for r in lab.scenario.resolvers}
    for proc in lab.processes:
        name = proc.name
        for resolver, software in kinds.items():
            if resolver in name:
                name = f"resolvers ({software})"
        with contextlib.suppress(OSError):
            totals[name] = totals.get(name, 0.0) + proc_cpu(proc.pid)
    return totals


def pick_edge(lab: LabStack) -> str:
    for address in lab.scenario.edge_addresses():
        if lab.scenario.edge_behaviour.get(address, "ok") == "ok":
            return address
    raise SystemExit("the scenario has no ok edge")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=60)
    ap.add_argument("--speed", type=float, default=1800.0)
    ap.add_argument("--profile-cycles", type=int, default=10)
    ap.add_argument("--probes", type=int, default=1000, help="per operation and tool")
    ap.add_argument("--breakdown-calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8, help="single-op comparison")
    ap.add_argument("--dnsperf-queries", type=int, default=3000)
    ap.add_argument("--dnsperf-outstanding", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2, help="throughput rounds")
    ap.add_argument("--stime-seconds", type=int, default=5)
    ap.add_argument("--resolver", default="lab-google-a")
    ap.add_argument("--budget", type=float, default=900.0, help="hard cap on the run, seconds")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--json", type=Path, help="also write raw figures here")
    ap.add_argument("--dns-only", action="store_true",
                    help="only the DNS comparison (baseline, edgewatch, uvloop, peers)")
    ap.add_argument("--dns-rounds", type=int, default=None,
                    help="alternating DNS rounds (default: 4 with --dns-only, else none)")
    ap.add_argument("--baseline", default="e1baa03",
                    help="git revision whose probe_dns is the DNS baseline")
    ap.add_argument("--dnseval-venv", type=Path, default=Path("/tmp/dnsdiag-venv"),
                    help="virtualenv with dnsdiag installed (pip install dnsdiag)")
    args = ap.parse_args(argv)

    budget = Budget(args.budget)
    r: dict = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "command": " ".join([".venv/bin/python", "bench/bench_probe.py",
                                    *(argv if argv is not None else sys.argv[1:])]),
               "speed": args.speed, "probes": args.probes, "concurrency": args.concurrency,
               "stime_seconds": args.stime_seconds, "ops": [], "throughput": [],
               "handshakes": [], "peer_errors": {},
               "load_before": loadavg()}
    r["facts"] = machine_facts()
    tmp = Path(tempfile.mkdtemp(prefix="edgewatch-bench-probe-"))
    blackbox: Blackbox | None = None
    try:
        log(f"starting the study-14d lab at {args.speed:g}x in {tmp}")
        with LabStack("study-14d", speed=args.speed, run_dir=tmp / "lab") as lab:
            r["lab_start_s"] = lab.started_in or 0.0
            cfg = load_config(lab.config_path)
            loopback_only(cfg)
            r.update(resolvers=len(cfg.resolvers), targets=len(cfg.targets),
                     limit=cfg.limits.concurrency,
                     timeouts=f"dns {cfg.timeouts.dns:g} / connect {cfg.timeouts.connect:g} / "
                              f"tls {cfg.timeouts.tls:g} / http {cfg.timeouts.http:g}")
            r["dns_timeout"] = cfg.timeouts.dns
            resolver = next(x for x in cfg.resolvers if x.name == args.resolver)
            target = cfg.targets[0]
            work = Work(resolver, target.name, pick_edge(lab), lab.edge_port,
                        target.server_name, lab.ca_path, cfg.timeouts.dns,
                        cfg.timeouts.connect, cfg.timeouts.tls, cfg.timeouts.http)
            assert is_loopback(work.edge) and is_loopback(resolver.address)
            r["work"] = work
            dns_rounds = args.dns_rounds if args.dns_rounds is not None else (
                4 if args.dns_only else 0)
            if dns_rounds:
                log(f"DNS comparison, {dns_rounds} rounds")
                r["dns_compare"] = probe_dns.compare(
                    work, tmp, args.probes, args.concurrency, dns_rounds,
                    budget.deadline(240), args.baseline, args.dnseval_venv,
                    with_blackbox=not args.no_peers)
            if args.dns_only:
                print(probe_dns.report(r["dns_compare"], args.probes, args.concurrency))
                return 0

            log(f"{args.cycles} cycles")
            lab0 = lab_cpu(lab)
            r["cycles"] = asyncio.run(run_cycles(cfg, args.cycles, budget.deadline(300),
                                                 tmp / "ndjson"))
            lab1 = lab_cpu(lab)
            r["lab_cpu"] = {k: lab1[k] - lab0[k] for k in lab0 if k in lab1}
            log(f"done: {len(r['cycles'].stats)} cycles; profiling {args.profile_cycles}")
            r["profile"] = asyncio.run(profile_cycles(cfg, args.profile_cycles,
                                                      budget.deadline(120), tmp / "ndjson-prof"))

            log("breakdown of one probe")
            r["breakdown"] = breakdown(work, args.breakdown_calls, budget.deadline(90))
            for op in ("dns", "tls", "http"):
                log(f"edgewatch {op} x{args.probes}")
                r["ops"].append(ew_ops(work, op, args.probes, args.concurrency,
                                       budget.deadline(120)))
            if not args.no_peers:
                try:
                    blackbox = Blackbox(work, tmp)
                    blackbox.start(budget.deadline(20))
                    assert blackbox.proc is not None
                    watch = SocketWatch(blackbox.proc.pid, budget.deadline(400))
                    watch.start()
                    r["blackbox_idle"] = blackbox.idle_cpu()
                    for op in ("dns", "tls", "http"):
                        log(f"blackbox_exporter {op} x{args.probes}")
                        r["ops"].append(blackbox.drive(op, args.probes, args.concurrency,
                                                       budget.deadline(120)))
                    watch.stop()
                    r["socket_watch"] = {"samples": watch.samples, "distinct": len(watch.seen),
                                         "off_loopback": sorted(watch.off_loopback)}
                except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                    r["blackbox_error"] = f"{type(exc).__name__}: {exc}"
                    log(f"blackbox_exporter failed: {exc}")
                finally:
                    if blackbox is not None:
                        blackbox.stop()

                for i in range(args.rounds):
                    log(f"throughput round {i + 1}: dnsperf and edgewatch, "
                        f"{args.dnsperf_queries} queries")
                    try:
                        d, _run = dnsperf(work, args.dnsperf_queries, args.dnsperf_outstanding,
                                          tmp, budget.deadline(60))
                    except OSError as exc:
                        r["peer_errors"]["dnsperf"] = f"{type(exc).__name__}: {exc}"
                        break
                    e = ew_ops(work, "dns", args.dnsperf_queries, args.dnsperf_outstanding,
                               budget.deadline(60))
                    r["throughput"].append((d, e))

                for www in (False, True):
                    log(f"openssl s_time {'with' if www else 'without'} HTTP")
                    try:
                        o, _run = s_time(work, args.stime_seconds, www,
                                         budget.deadline(args.stime_seconds + 20))
                    except OSError as exc:
                        r["peer_errors"]["openssl s_time"] = f"{type(exc).__name__}: {exc}"
                        break
                    e = ew_ops(work, "http" if www else "tls", max(o.done, 1), 1,
                               budget.deadline(args.stime_seconds * 3 + 10), warmup=3)
                    r["handshakes"].append((o, e))
        log("lab stopped")
    finally:
        if blackbox is not None:
            blackbox.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    r["load_after"] = loadavg()
    print(report(r))
    if r.get("dns_compare"):
        print("\n" + probe_dns.report(r["dns_compare"], args.probes, args.concurrency))
    if args.json:
        raw = {k: v for k, v in r.items()
               if k not in ("profile", "cycles", "work", "dns_compare")}
        raw["ops"] = [asdict(f) for f in r["ops"]]
        raw["throughput"] = [[asdict(d), asdict(e)] for d, e in r["throughput"]]
        raw["handshakes"] = [[asdict(o), asdict(e)] for o, e in r["handshakes"]]
        raw["cycles"] = [{"real": s.real_seconds, "cpu": s.cpu_seconds, "queries": s.queries,
                          "addresses": s.addresses, "connects": s.connects,
                          "documents": s.documents, "failures": dict(s.failures)}
                         for s in r["cycles"].stats]
        args.json.write_text(json.dumps(raw, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
