"""The runner's probe workloads against the lab: DNS and TLS, edgewatch and its peers
alternately (blackbox_exporter, dnsperf, dnsdiag's ``dnseval``, ``openssl s_time``).

Each workload is one small function over the existing bench modules (probe_ops, peer_blackbox,
peer_tools, bench_tls), so whoever changes how edgewatch does a probe changes it there, and the
runner measures the new path. Every round flips which side goes first; the sums over the rounds
give the CPU per operation of each side. A missing peer is a row saying so, never a failure.
"""

from __future__ import annotations

import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_tls import measure as tls_candidates
from peer_blackbox import Blackbox
from peer_tools import dnsperf, run_tool, s_time
from probe_common import OpFigures, Work, log
from probe_ops import breakdown, ew_ops
from run_table import Row, us


@dataclass
class Side:
    """One side's figures summed over the rounds."""

    cpu_s: float = 0.0
    wall_s: float = 0.0
    done: int = 0
    ok: int = 0
    rounds: list[float] = field(default_factory=list)  # CPU µs per op of each round

    def add(self, fig: OpFigures) -> None:
        self.cpu_s += fig.cpu_s
        self.wall_s += fig.wall_s
        self.done += fig.done
        self.ok += fig.ok
        self.rounds.append(fig.cpu_per_op_us or 0.0)

    @property
    def cpu_us(self) -> float | None:
        return self.cpu_s / self.done * 1e6 if self.done else None

    @property
    def per_cpu_s(self) -> float | None:
        return self.done / self.cpu_s if self.cpu_s else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def alternate(rounds: int, ours, theirs) -> tuple[Side, Side]:
    """``ours()`` and ``theirs()`` (each returning OpFigures) in flipping order per round."""
    a, b = Side(), Side()
    for i in range(rounds):
        pair = ((a, ours), (b, theirs)) if i % 2 == 0 else ((b, theirs), (a, ours))
        for side, run in pair:
            side.add(run())
    return a, b


def _detail(name: str, a: Side, b: Side) -> str:
    rounds = ", ".join(f"{x:,.0f}/{y:,.0f}" for x, y in zip(a.rounds, b.rounds, strict=False))
    return f"{name}: CPU µs per op edgewatch/peer by round {rounds}; ok {a.ok}/{a.done} and " \
           f"{b.ok}/{b.done}"


def vs_blackbox(work: Work, tmp: Path, n: int, rounds: int, deadline: float,
                details: list[str]) -> list[Row]:
    """DNS, TCP+TLS, TCP+TLS+HTTP: edgewatch and blackbox_exporter, 8 in flight."""
    labels = {"dns": ("DNS A query, CPU per query, 8 concurrent", 0.8,
                      "≤ 0.8× blackbox_exporter"),
              "tls": ("TCP + verifying TLS 1.3, CPU per check", 0.9,
                      "≤ 0.9× blackbox_exporter"),
              "http": ("TCP + TLS + HTTP GET", None, "")}
    if shutil.which("prometheus-blackbox-exporter") is None:
        return [Row(labels[op][0], "—", "blackbox_exporter not installed",
                    target=labels[op][2], goal=labels[op][1]) for op in labels]
    rows = []
    bb = Blackbox(work, tmp)
    try:
        bb.start(min(deadline, time.monotonic() + 30))
        for op, (label, goal, target) in labels.items():
            log(f"{op}: edgewatch and blackbox_exporter, {rounds} rounds of {n}")
            a, b = alternate(rounds, lambda op=op: ew_ops(work, op, n, 8, deadline),
                             lambda op=op: bb.drive(op, n, 8, deadline))
            rows.append(Row(label, us(a.cpu_us), f"blackbox_exporter: {us(b.cpu_us)}",
                            _ratio(a.cpu_us, b.cpu_us), goal, target=target))
            details.append(_detail(f"{op} vs blackbox_exporter", a, b))
    finally:
        bb.stop()
    return rows


def vs_dnsperf(work: Work, tmp: Path, queries: int, rounds: int, deadline: float) -> Row:
    label = f"DNS throughput, {queries:,} queries 32 in flight, CPU per query"
    if shutil.which("dnsperf") is None:
        return Row(label, "—", "dnsperf not installed")
    a, b = alternate(rounds, lambda: ew_ops(work, "dns", queries, 32, deadline),
                     lambda: dnsperf(work, queries, 32, tmp, deadline)[0])
    rate_a = a.ok / a.wall_s if a.wall_s else 0.0
    rate_b = b.ok / b.wall_s if b.wall_s else 0.0
    return Row(label, f"{us(a.cpu_us)}, {rate_a:,.0f} q/s",
               f"dnsperf: {us(b.cpu_us)}, {rate_b:,.0f} q/s", _ratio(a.cpu_us, b.cpu_us),
               note="dnsperf is C with no parsing of answers: a limit, not a peer")


def dnseval_figures(work: Work, count: int, tmp: Path, deadline: float) -> OpFigures:
    """dnseval's CPU per query: a run of ``count`` less its interpreter start.

    dnseval has no mode without the start (importing dnspython and its own modules costs about
    as much CPU as a few hundred queries), so the start is measured as the median of three runs
    of one query and taken off. ``count`` must be large enough for the queries to outweigh the
    spread of those runs: with 120 queries the figure swung between 0.9× and 2.9× of ours from
    one run to the next.
    """
    servers = tmp / "dnseval-servers.txt"
    servers.write_text(f"{work.resolver.address}\n")
    exe = shutil.which("dnseval") or str(Path(__file__).resolve().parents[1] / ".venv/bin/dnseval")

    def run(n: int):
        argv = [exe, "-f", str(servers), "-p", str(work.resolver.port), "-c", str(n),
                "-w", str(max(round(work.dns_timeout), 1)), "--skip-warmup", work.qname]
        return run_tool(argv, deadline)

    ones = [run(1) for _ in range(3)]
    many = run(count)
    fig = OpFigures("dnseval", "dns", count, concurrency=1)
    if many.returncode == 0 and all(o.returncode == 0 for o in ones):
        start_cpu = statistics.median(o.cpu_s for o in ones)
        start_wall = statistics.median(o.wall_s for o in ones)
        fig.done = fig.ok = count - 1
        fig.cpu_s = max(many.cpu_s - start_cpu, 1e-9)
        fig.wall_s = many.wall_s - start_wall
        fig.note = (f"start {start_cpu * 1e3:,.0f} ms CPU (runs of one: "
                    + ", ".join(f"{o.cpu_s * 1e3:,.0f}" for o in ones)
                    + f"), {count:,} queries {many.cpu_s * 1e3:,.0f} ms")
    else:
        bad = many if many.returncode else next(o for o in ones if o.returncode)
        fig.note = f"exit {bad.returncode}: {bad.output.strip()[-200:]}"
    return fig


def vs_dnseval(work: Work, tmp: Path, count: int, rounds: int, deadline: float,
               details: list[str]) -> Row:
    label = "DNS queries per CPU second, one at a time"
    exe = Path(__file__).resolve().parents[1] / ".venv/bin/dnseval"
    if shutil.which("dnseval") is None and not exe.exists():
        return Row(label, "—", "dnseval (dnsdiag) not installed", goal=5.0, better="higher",
                   target="≥ 5× dnseval's")
    notes: list[str] = []

    def theirs() -> OpFigures:
        fig = dnseval_figures(work, count, tmp, deadline)
        notes.append(fig.note)
        return fig

    a, b = alternate(rounds, lambda: ew_ops(work, "dns", count, 1, deadline), theirs)
    details.append(_detail("dns one at a time vs dnseval", a, b) + "; dnseval by round: "
                   + "; ".join(notes))
    return Row(label, f"{a.per_cpu_s or 0:,.0f} q/CPU-s",
               f"dnseval (dnsdiag): {b.per_cpu_s or 0:,.0f} q/CPU-s",
               _ratio(a.per_cpu_s, b.per_cpu_s), 5.0, "higher", "≥ 5× dnseval's",
               note=f"{count:,} queries a run; dnseval's CPU less the median of three runs "
                    "of one query (its interpreter start)")


def vs_s_time(work: Work, seconds: int, rounds: int, deadline: float,
              details: list[str]) -> list[Row]:
    """Sequential handshakes (and with HTTP) against ``openssl s_time -new``."""
    rows = []
    for www in (False, True):
        label = ("sequential handshakes vs `openssl s_time -new`" if not www else
                 "sequential handshake + GET vs `s_time -new -www`")
        peer = Side()
        ours = Side()
        count = 0  # handshakes per edgewatch run: as many as s_time managed in its last run
        for i in range(rounds):
            # Which side goes first alternates; s_time runs for a time, so edgewatch's count
            # is the one s_time reached in the round before when edgewatch goes first.
            ours_first = i % 2 == 1 and count > 0
            if ours_first:
                ours.add(ew_ops(work, "http" if www else "tls", count, 1, deadline, warmup=3))
            o, _run = s_time(work, seconds, www, deadline)
            if not o.done:  # killed at the deadline before it printed: no figure, no round
                break
            peer.add(o)
            count = max(o.done, 50)
            if not ours_first:
                ours.add(ew_ops(work, "http" if www else "tls", count, 1, deadline, warmup=3))
        goal, target = (1.2, "≤ 1.2× s_time's CPU") if not www else (None, "")
        rows.append(Row(label, us(ours.cpu_us), f"openssl s_time: {us(peer.cpu_us)}",
                        _ratio(ours.cpu_us, peer.cpu_us), goal, target=target))
        details.append(_detail(label, ours, peer))
    return rows


def limits(work: Work, n: int, deadline: float) -> list[Row]:
    """The pieces of one probe alone (probe_ops.breakdown): limits, not peers."""
    rows = []
    for label, cpu, _done in breakdown(work, n, deadline):
        rows.append(Row(f"piece: {label}", us(cpu), "—"))
    return rows


def tls_paths(work: Work, per_round: int, rounds: int, deadline: float) -> list[Row]:
    """bench_tls's candidates, 8 and 1 in flight: the path chosen and the ones not."""
    rows = []
    for n in (8, 1):
        results = tls_candidates(work, rounds, per_round, n, deadline)
        cpu = {name: sum(f.cpu_s for f in figs) / max(sum(f.done for f in figs), 1) * 1e6
               for name, figs in results.items()}
        base = cpu.get("start_tls")
        text = " / ".join(f"{name} {v:,.0f}" for name, v in cpu.items())
        rows.append(Row(f"TLS paths, {n} in flight (µs per handshake)", text,
                        f"start_tls: {us(base)}", _ratio(cpu.get("SSLSocket + add_reader"),
                                                         base),
                        note="" if n == 1 else "ratio: the non-blocking SSLSocket path "
                        "(what probe_connect uses) ÷ start_tls, bare handshakes"))
    return rows
