"""Every benchmark workload, edgewatch and its peer or limit alternately, in one bounded run.

    .venv/bin/python bench/run.py [--budget 12] [--only probe,tls,ingest,report] [--soak]
                                  [--no-write] [--out docs/BENCHMARKS.md]

Example: ``.venv/bin/python bench/run.py --budget 8 --only probe,tls`` measures DNS and TLS
against blackbox_exporter, dnsperf, dnseval and ``openssl s_time`` in about five minutes.

What runs, in this order (each workload gets what is left of ``--budget`` minutes, capped):

* ``probe`` — the ``quick`` lab on loopback (real resolvers, TLS edges); DNS, TCP+TLS and
  TCP+TLS+HTTP by edgewatch's probes and by blackbox_exporter (8 in flight), DNS throughput vs
  dnsperf, queries per CPU second vs dnsdiag's ``dnseval``, sequential handshakes vs ``openssl
  s_time -new``, and the pieces of one probe alone (the limits);
* ``tls`` — bench_tls's handshake paths side by side (the one probe_connect uses and the others);
* ``ingest`` — bench_indexing.py: the sink vs raw ``_bulk`` on a devstack node started here
  (heap 512m), rounds alternating which side goes first;
* ``report`` — bench_report.py: 1M checks loaded into the same node, then ``edgewatch report`` as
  a fresh process (``--report-docs`` for another size);
* ``--soak`` — bench_soak.py where the tree has it.

Within a workload, every round flips which side goes first, so load from other work on the
machine falls on both; CPU per operation is the figure compared. Missing peers are rows saying
so. Everything is on loopback: the lab refuses a config pointing elsewhere, the node listens on
127.0.0.1. The table (with targets and met/not), the machine line and the load average at start
and end go into docs/BENCHMARKS.md between the runner's markers (``--no-write``: stdout only).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench_probe import pick_edge
from probe_common import ROOT, Budget, Work, is_loopback, log, loopback_only
from probe_report import loadavg, machine_facts
from run_table import Row, section, write_between_markers

WORKLOADS = ("probe", "tls", "ingest", "report")


def lab_work(lab, resolver_name: str) -> Work:
    """The single-operation workload: one fault-free resolver, one "ok" edge, lab timeouts."""
    from pipeline.config import load_config

    cfg = load_config(lab.config_path)
    loopback_only(cfg)
    resolver = next(r for r in cfg.resolvers if r.name == resolver_name)
    target = cfg.targets[0]
    t = cfg.timeouts
    work = Work(resolver, target.name, pick_edge(lab), lab.edge_port, target.server_name,
                lab.ca_path, t.dns, t.connect, t.tls, t.http)
    if not (is_loopback(work.edge) and is_loopback(resolver.address)):
        raise SystemExit("refusing to run: the workload is not on loopback")
    return work


def probe_workloads(args: argparse.Namespace, budget: Budget, tmp: Path,
                    details: list[str]) -> list[Row]:
    import run_probe

    from lab.stack import LabStack

    rows: list[Row] = []
    log("starting the quick lab")
    with LabStack("quick", speed=1800.0, run_dir=tmp / "lab") as lab:
        work = lab_work(lab, args.resolver)
        n, rounds = args.probes, args.rounds
        if "probe" in args.only:
            rows += run_probe.vs_blackbox(work, tmp, n, rounds, budget.deadline(150), details)
            rows.append(run_probe.vs_dnsperf(work, tmp, 3 * n, rounds, budget.deadline(60)))
            rows.append(run_probe.vs_dnseval(work, tmp, args.dnseval_queries, rounds,
                                             budget.deadline(60), details))
            # each round: s_time 3 s and edgewatch as many handshakes, with and without GET
            rows += run_probe.vs_s_time(work, 3, rounds, budget.deadline(20 * rounds + 20),
                                        details)
            rows += run_probe.limits(work, n, budget.deadline(40))
        if "tls" in args.only:
            log("TLS handshake paths")
            rows += run_probe.tls_paths(work, max(n // 4, 50), rounds, budget.deadline(90))
    log("lab stopped")
    return rows


def es_workloads(args: argparse.Namespace, budget: Budget, tmp: Path,
                 details: list[str]) -> list[Row]:
    import run_es

    from devstack.node import start_node

    rows: list[Row] = []
    log("starting a devstack Elasticsearch node (heap 512m)")
    node_dir = Path(tempfile.mkdtemp(prefix="edgewatch-bench-es-"))  # the node's user enters it
    node = start_node(run_dir=node_dir, heap="512m", die_with_parent=True)
    try:
        # each guarded on its own: a workload that breaks leaves the others' rows standing
        if "ingest" in args.only:
            # five rounds of 30,000: same-round pairs spread 0.80–1.30 at three of 10,000
            # (one second a side), and a median of three drew the verdict either way
            rows += guarded("ingest", run_es.ingest, node.url, args.ingest_docs,
                            max(args.rounds, 5), budget.deadline(180), details)
        if "report" in args.only:
            rows += guarded("report", run_es.report, node.url, args.report_docs,
                            budget.deadline(420), details, node.run_dir / "node.pid")
        if args.soak:
            rows += guarded("soak", lambda: [run_es.soak(node.url,
                                                         budget.deadline(budget.left()))])
    finally:
        node.stop()
        shutil.rmtree(node_dir, ignore_errors=True)
    return rows


def guarded(name: str, run, *args) -> list[Row]:
    """A workload that fails is a row saying why; the others still run and are written."""
    try:
        return run(*args)
    except Exception as exc:  # the runner's boundary: one broken workload is not the run
        log(f"{name} failed: {type(exc).__name__}: {exc}")
        return [Row(f"{name} workloads", "not measured", "—",
                    note=f"{type(exc).__name__}: {str(exc)[:200]}")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: .venv/bin/python bench/run.py --budget 8 "
                                        "--only probe,tls --no-write")
    ap.add_argument("--budget", type=float, default=12.0, help="minutes for the whole run")
    ap.add_argument("--only", default=",".join(WORKLOADS),
                    help=f"comma-separated workloads among {', '.join(WORKLOADS)}")
    ap.add_argument("--soak", action="store_true", help="also run the soak (bench_soak.py)")
    ap.add_argument("--probes", type=int, default=600, help="operations per side and round")
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds per workload "
                    "(the ratio is of the medians: the TLS one spread 0.70–0.97 over two)")
    ap.add_argument("--resolver", default="lab-google-a")
    ap.add_argument("--dnseval-queries", type=int, default=2000,
                    help="queries per run against dnseval (its start is taken off)")
    ap.add_argument("--ingest-docs", type=int, default=30000)
    ap.add_argument("--report-docs", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    args = ap.parse_args(argv)
    args.only = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = args.only - set(WORKLOADS)
    if unknown:
        ap.error(f"--only: unknown workload {', '.join(sorted(unknown))} "
                 f"(choose among {', '.join(WORKLOADS)})")

    budget = Budget(args.budget * 60)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = loadavg()
    tmp = Path(tempfile.mkdtemp(prefix="edgewatch-bench-run-"))
    rows: list[Row] = []
    details: list[str] = []
    try:
        if args.only & {"probe", "tls"}:
            rows += guarded("probe", probe_workloads, args, budget, tmp, details)
        if args.only & {"ingest", "report"} or args.soak:
            rows += guarded("Elasticsearch", es_workloads, args, budget, tmp, details)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    facts = machine_facts()
    header = [f"### Runner figures ({started}, `.venv/bin/python bench/run.py "
              f"{' '.join(argv if argv is not None else sys.argv[1:])}`)".replace(" `)", "`)"),
              "", "Machine: " + "; ".join(f"{k} {v}" for k, v in facts.items()) + ".",
              f"Load average (1, 5, 15 min) at start {load_start}, at end {loadavg()}; "
              f"{args.budget * 60 - budget.left():.0f} s of a "
              f"{args.budget:g}-minute budget used."]
    text = section(rows, header, ["Details:", ""] + [f"* {d}" for d in details])
    print(text)
    if not args.no_write:
        write_between_markers(args.out, text)
        log(f"table written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
