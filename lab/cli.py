"""edgewatch-lab: run the simulated CDN lab and print its ground truth.

    edgewatch-lab up --scenario quick --speed 3600 --run-dir var/lab   # start, print config
    edgewatch-lab up ... --foreground                                  # stay in front (Docker)
    edgewatch-lab status --run-dir var/lab
    edgewatch-lab up --scenario dualstack --run-dir var/lab6   # IPv4+IPv6, own network namespace
    edgewatch-lab exec --run-dir var/lab6 -- edgewatch run --config var/lab6/edgewatch.toml
    edgewatch-lab down --run-dir var/lab                               # stop every process
    edgewatch-lab truth --scenario study-14d --interval 15m --format json
    edgewatch-lab netinfo --scenario study-14d --out ip2asn.tsv

The lab is an authoritative DNS server following a scenario on an (accelerated) scenario clock,
real recursive resolvers (unbound, knot-resolver, PowerDNS Recursor) in front of it, and TLS edges
on loopback addresses. `up` writes an edgewatch config pointing at all of it (printed, and saved
as <run-dir>/edgewatch.toml). Nothing it starts talks to anything outside 127.0.0.0/8. A
dual-stack scenario (IPv6 edges in fd00::/8) runs in a network namespace of its own, removed by
`down`; run the observer in it with `exec`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from lab import netns
from lab.netinfo import iptoasn_lines
from lab.scenario import ScenarioError, load_scenario
from lab.stack import LabError, LabStack, stop_run_dir
from lab.state import STATE_FILE, LabState
from lab.timeparse import iso, parse_instant
from lab.truth import GroundTruth, TruthUndetermined


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgewatch-lab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the lab and print an edgewatch config for it")
    up.add_argument("--scenario", default="quick",
                    help="shipped scenario name (quick, study-14d) or path to a .toml file")
    up.add_argument("--speed", type=float, default=3600.0,
                    help="scenario seconds per real second (1 = real time; default 3600)")
    up.add_argument("--run-dir", type=Path, default=Path("var/lab"),
                    help="folder for state, certificates, configs and logs (default var/lab)")
    up.add_argument("--start-at", type=parse_instant, default=None,
                    help="scenario instant the clock starts at (default: the scenario's start)")
    up.add_argument("--octet", type=int, default=None,
                    help="address plan 127.OCTET.x.y (default: first free from 53)")
    up.add_argument("--edge-port", type=int, default=None,
                    help="TLS port of the edges (default: 443, or the first free fallback)")
    up.add_argument("--foreground", action="store_true",
                    help="stay in the foreground; SIGTERM/SIGINT stop the whole lab")
    up.add_argument("--quiet", action="store_true", help="print only the config path")
    up.add_argument("--namespace", action="store_true", default=None,
                    help="run in a network namespace of its own even without IPv6 edges "
                    "(dual-stack scenarios always do)")
    up.add_argument("--config-out", type=Path, default=None,
                    help="also write the config here, with copies of ca.pem and ip2asn.tsv beside"
                         " it (for a pipeline container that shares only that folder)")

    down = sub.add_parser("down", help="stop every process of the lab in --run-dir")
    down.add_argument("--run-dir", type=Path, default=Path("var/lab"))

    status = sub.add_parser("status", help="show whether the lab in --run-dir runs")
    status.add_argument("--run-dir", type=Path, default=Path("var/lab"))

    ex = sub.add_parser("exec", help="run a command where the lab's addresses are (inside a "
                        "dual-stack lab's namespace)",
                        epilog="example: edgewatch-lab exec --run-dir var/lab6 -- "
                        "edgewatch run --config var/lab6/edgewatch.toml --cycles 8")
    ex.add_argument("--run-dir", type=Path, default=Path("var/lab"))
    ex.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")

    truth = sub.add_parser("truth", help="print what a perfect observer would record")
    truth.add_argument("--scenario", default="study-14d")
    truth.add_argument("--interval", default=None, help="poll interval (default: scenario grid)")
    truth.add_argument("--from", dest="start", type=parse_instant, default=None)
    truth.add_argument("--until", dest="end", type=parse_instant, default=None)
    truth.add_argument("--speed", type=float, default=1.0,
                       help="clock speed the lab would run at (affects caching only)")
    truth.add_argument("--resolver", action="append", help="only these resolvers")
    truth.add_argument("--observer", default=None,
                       help="as this [[observers]] entry sees it (its source address), e.g. "
                       "--scenario observers --observer lab-fra")
    truth.add_argument("--format", choices=["text", "json"], default="text")
    truth.add_argument("--runs", action="store_true", help="text format: list every run")
    truth.add_argument("--record-type", choices=["A", "AAAA"], default="A",
                       help="which family's answers (AAAA: a dual-stack scenario's IPv6 side)")

    net = sub.add_parser("netinfo", help="write the scenario's iptoasn-format TSV")
    net.add_argument("--scenario", default="study-14d")
    net.add_argument("--out", type=Path, default=None, help="file (default: stdout)")
    return p


def _up(args: argparse.Namespace) -> int:
    lab = LabStack(args.scenario, speed=args.speed, run_dir=args.run_dir,
                   start_at=args.start_at, octet=args.octet, edge_port=args.edge_port,
                   detach=not args.foreground, namespace=args.namespace)
    stop = threading.Event()
    if args.foreground:
        # Before anything starts or is announced: a SIGTERM that arrives while the lab comes up,
        # or right after the config path is printed, must still stop the whole lab cleanly.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    lab.start()
    if args.config_out is not None:
        lab.export_config(args.config_out)
    if args.quiet:
        print(lab.config_path)
    else:
        print(lab.config_path.read_text())
        print(f"# lab ready in {lab.started_in:.2f}s; config: {lab.config_path}", flush=True)
        for o in lab.scenario.observers:
            print(f"# observer {o.name} (sends from {o.source}): "
                  f"{lab.run_dir / f'edgewatch-{o.name}.toml'}", flush=True)
        if lab.netns:
            print(f"# network namespace {lab.netns} (set up in {lab.netns_setup_s:.3f}s); "
                  f"observe from inside: edgewatch-lab exec --run-dir {args.run_dir} -- "
                  f"edgewatch run --config {lab.config_path}", flush=True)
        print(f"# stop with: edgewatch-lab down --run-dir {args.run_dir}", flush=True)
    sys.stdout.flush()
    if not args.foreground:
        return 0
    try:
        while not stop.wait(1.0):
            dead = [p.name for p in lab.processes if not p.alive()]
            if dead:
                print(f"# lab process(es) died: {dead}; stopping", file=sys.stderr)
                return 1
    finally:
        lab.stop()
    return 0


def _status(args: argparse.Namespace) -> int:
    run_dir = args.run_dir.resolve()
    if not (run_dir / STATE_FILE).exists():
        print(f"no lab in {run_dir}")
        return 1
    from lab.procs import Managed

    state = LabState.load(run_dir)
    procs = [Managed.from_dict(p) for p in state.processes]
    alive = sum(p.alive() for p in procs)
    print(f"lab in {run_dir}: {alive}/{len(procs)} processes alive; "
          f"scenario now {iso(state.clock.now())} (speed {state.clock.speed:g})")
    if state.netns:
        print(f"  network namespace {state.netns} "
              f"({'present' if netns.exists(state.netns) else 'MISSING'})")
    for p in procs:
        print(f"  {'up  ' if p.alive() else 'DOWN'} {p.pid:>7} {p.name}")
    return 0 if procs and alive == len(procs) else 1


def _exec(args: argparse.Namespace) -> int:
    """Replace this process with the command, inside the lab's namespace if it has one."""
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise LabError("exec: no command given (edgewatch-lab exec --run-dir D -- COMMAND)")
    run_dir = args.run_dir.resolve()
    if not (run_dir / STATE_FILE).exists():
        raise LabError(f"exec: no lab in {run_dir}")
    name = LabState.load(run_dir).netns
    if name and not netns.exists(name):
        raise LabError(f"exec: the lab's network namespace {name} is gone (edgewatch-lab up)")
    full = [*netns.exec_prefix(name), *argv] if name else argv
    try:
        os.execvp(full[0], full)
    except OSError as exc:
        raise LabError(f"exec: {full[0]}: {exc.strerror}") from None
    return 127  # not reached


def _truth(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    truth = GroundTruth(scenario, speed=args.speed)
    if args.observer is not None:
        try:
            truth = truth.for_observer(args.observer)
        except KeyError:
            known = ", ".join(o.name for o in scenario.observers) or "none"
            print(f"edgewatch-lab truth: --observer {args.observer!r}: not an observer of "
                  f"scenario {scenario.name!r} (it has: {known})", file=sys.stderr)
            return 2
    summary = truth.summary(args.start, args.end, args.interval, args.record_type)
    if args.resolver:
        summary = {k: v for k, v in summary.items() if k in set(args.resolver)}
    edges = {a: truth.edge_outcome(a) for a in scenario.edge_addresses()}
    if args.format == "json":
        doc = {
            "scenario": scenario.name,
            "from": iso(args.start or scenario.start), "until": iso(args.end or scenario.end),
            "interval": args.interval or f"{scenario.grid:g}s", "speed": args.speed,
            "resolvers": {r: {"view": truth.view_of(r),
                              "targets": {t: s.to_dict() for t, s in per.items()}}
                          for r, per in summary.items()},
            "edges": edges,
        }
        json.dump(doc, sys.stdout, indent=1)
        print()
        return 0
    print(f"scenario {scenario.name}: {iso(args.start or scenario.start)} .. "
          f"{iso(args.end or scenario.end)}, every {args.interval or f'{scenario.grid:g}s'}")
    for resolver, per in summary.items():
        print(f"\n{resolver} (view {truth.view_of(resolver)})")
        for target, s in per.items():
            fails = ", ".join(f"{k}={v}" for k, v in s.failures.items()) or "none"
            print(f"  {target}: polls={s.polls} unique={len(s.unique_addresses)} "
                  f"runs={len(s.runs)} open={sum(r.open for r in s.runs)} "
                  f"reuse={s.reuse_count} failures: {fails}")
            if args.runs:
                for r in s.runs:
                    end = iso(r.end) if r.end else "open"
                    print(f"    {r.address:<16} #{r.seq} {iso(r.start)} .. {end} "
                          f"checks={r.checks} gaps={r.gaps}")
    print("\nedges:")
    for address, outcome in edges.items():
        print(f"  {address:<15} {outcome or 'ok'}")
    return 0


def _netinfo(args: argparse.Namespace) -> int:
    text = "\n".join(iptoasn_lines(load_scenario(args.scenario))) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            return _up(args)
        if args.command == "down":
            n = stop_run_dir(args.run_dir)
            print(f"stopped {n} process(es) of the lab in {args.run_dir.resolve()}")
            return 0
        if args.command == "status":
            return _status(args)
        if args.command == "exec":
            return _exec(args)
        if args.command == "truth":
            return _truth(args)
        return _netinfo(args)
    except (ScenarioError, LabError, TruthUndetermined) as exc:
        print(f"edgewatch-lab: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
