"""Where a sequential TLS check's instructions go, library by library, against ``openssl s_time``.

    .venv/bin/python bench/bench_tls_count.py [--small 20] [--large 220]
    .venv/bin/python bench/bench_tls_count.py --clock [--rounds 3]

Why counted and not timed: CPU times on these shared machines move ±15 % from round to round,
while ``valgrind --tool=callgrind`` counts the same instructions for the same work whatever else
the machine does. Each side runs twice under callgrind, a small and a large number of
handshakes against the ``quick`` lab's first "ok" edge (loopback, lab CA, SNI, verifying), and
the difference divided by the extra handshakes is one handshake's instructions, process start
and set-up cancelled out. The sides:

* ``s_time``: ``openssl s_time -new -CAfile … -verify 2`` (time-bounded: it has no count, so
  its own "N connections" line gives the handshakes of each run);
* ``blocking``: ``socket.create_connection`` + ``SSLContext.wrap_socket`` + DER + close on the
  calling thread: the least Python a check can be;
* ``tls_socket``: ``pipeline.probe.tls_socket.TlsSocket`` connect, handshake, DER, close on
  asyncio's loop: the check's socket alone;
* ``probe``: ``Probes.connect``, the whole check (timer, facts, result) as a cycle runs it.

The table splits each side's instructions by shared object (libcrypto, libssl, libc, the
interpreter, …): what OpenSSL costs is then told apart from what the Python around it costs.
Instructions are not seconds (the interpreter's run at a lower rate than OpenSSL's arithmetic),
so the figures say where the work is, and a CPU-time ratio still needs a timed run
(``bench/run.py``). Needs valgrind; loopback only.

``--clock`` asks the other question, where the *time* goes: each side runs under
``perf record -e cpu-clock`` (a software clock, so it works where a virtual machine offers no
hardware counters), a sample every millisecond of CPU, user and kernel; samples by shared
object times the period are CPU time by library, and again the difference of a small and a
large run over the extra handshakes is one handshake's. Sampling is noisier than counting, so
the sides alternate for ``--rounds`` rounds and the table gives each cell's median. Needs perf.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LINE = re.compile(r"^\s*([\d,]+)\s.*\[([^\]]+)\]\s*$")
PERF_LINE = re.compile(r"^\s*[\d.]+%\s+(\d+)\s+(\S.*?)\s*$")  # share, samples, object
PERIOD_NS = 1_000_000  # --clock: one sample per millisecond of CPU
CONNECTIONS = re.compile(r"(\d+) connections in [\d.]+s")
SIDES = ("s_time", "blocking", "tls_socket", "probe")


def _drive(side: str, work: dict[str, str], n: int) -> None:
    """Run ``n`` handshakes of ``side`` (this process is the one callgrind counts)."""
    if side == "blocking":
        ctx = ssl.create_default_context(cafile=work["ca"])
        for _ in range(n):
            with ctx.wrap_socket(socket.create_connection((work["edge"], int(work["port"]))),
                                 server_hostname=work["sni"]) as tls:
                tls.getpeercert(True)
        return
    asyncio.run(_drive_async(side, work, n))


async def _drive_async(side: str, work: dict[str, str], n: int) -> None:
    sys.path[:0] = [str(ROOT), str(HERE)]
    if side == "tls_socket":
        from pipeline.probe.tls_socket import TlsSocket

        ctx = ssl.create_default_context(cafile=work["ca"])
        for _ in range(n):
            conn = TlsSocket.new(work["edge"])
            tls = await conn.open(work["edge"], int(work["port"]), ctx, work["sni"],
                                  lambda: None)
            tls.getpeercert(True)
            await conn.close()
        return
    from pipeline.config import Target, Timeouts
    from pipeline.probe.probes import Probes, ProbeSettings

    probes = Probes(settings=ProbeSettings.adhoc(Timeouts(2.0, 2.0, 2.0, 2.0), Path(work["ca"]),
                                                 None))
    target = Target(work["sni"], port=int(work["port"]), sni=work["sni"])
    for _ in range(n):
        result = await probes.connect(work["edge"], target)
        if not (result.ok and result.tls_verified):
            raise SystemExit(f"check failed: {result.error_type} {result.error_message}")


def _by_object(out_file: Path) -> dict[str, int]:
    """Instructions per shared object, from callgrind_annotate's per-function lines."""
    text = subprocess.run(["callgrind_annotate", "--threshold=100", str(out_file)],
                          capture_output=True, text=True, check=True).stdout
    totals: dict[str, int] = defaultdict(int)
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            totals[Path(m.group(2)).name] += int(m.group(1).replace(",", ""))
    return totals


def _by_object_clock(out_file: Path) -> dict[str, int]:
    """CPU microseconds per shared object, from ``perf report``'s samples by object."""
    text = subprocess.run(["perf", "report", "-i", str(out_file), "--sort", "dso", "--stdio",
                           "-n"], capture_output=True, text=True, check=True).stdout
    totals: dict[str, int] = defaultdict(int)
    for line in text.splitlines():
        m = PERF_LINE.match(line)
        if m and not line.lstrip().startswith("#"):
            totals[Path(m.group(2)).name] += int(m.group(1)) * PERIOD_NS // 1000
    return totals


def _count(side: str, work: dict[str, str], n: int, folder: Path, clock: bool = False
           ) -> tuple[dict[str, int], int]:
    """One run under callgrind (instructions by object) or, with ``clock``, under perf (CPU
    microseconds by object); and the handshakes it did."""
    out = folder / f"{side}.{n}.out"
    if clock:
        vg = ["perf", "record", "-q", "-e", "cpu-clock", "-c", str(PERIOD_NS), "-o", str(out),
              "--"]
    else:
        vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    if side == "s_time":
        from peer_tools import s_time_argv

        argv = [*vg, *s_time_argv(work["edge"], int(work["port"]), work["ca"], n)]
    else:
        argv = [*vg, sys.executable, __file__, "--drive", side, "--work", json.dumps(work),
                     "--n", str(n)]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        raise SystemExit(f"{side}: exit {run.returncode}: {run.stderr.strip()[-400:]}")
    done = n
    if side == "s_time":
        m = CONNECTIONS.search(run.stdout)
        if not m:
            raise SystemExit(f"s_time printed no count: {run.stdout.strip()[-300:]}")
        done = int(m.group(1))
    return (_by_object_clock(out) if clock else _by_object(out)), done


def _groups(totals: dict[str, int]) -> dict[str, int]:
    """libcrypto, libssl, libc, the interpreter (libpython and C extension modules) and the
    rest; cryptography's ``_rust.abi3.so`` falls in the rest (it carries its own OpenSSL)."""
    out: dict[str, int] = defaultdict(int)
    for name, count in totals.items():
        if name.startswith("libcrypto"):
            out["libcrypto"] += count
        elif name.startswith("libssl"):
            out["libssl"] += count
        elif name.startswith("libc.so"):
            out["libc"] += count
        elif name.startswith("libpython") or ".cpython-" in name:
            out["interpreter"] += count
        elif name.startswith("[kernel"):
            out["kernel"] += count
        else:
            out["other"] += count
    return out


def _s_time_seconds(n: int, clock: bool) -> int:
    """s_time runs for seconds, not handshakes: about ten a second under callgrind, some
    thousand a second under perf."""
    return max(1, n // 1000) if clock else max(2, n // 10)


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def _table(rows: dict[str, list[dict[str, float]]], extras: dict[str, list[int]],
           clock: bool) -> str:
    """Markdown: one handshake's instructions (or CPU µs) by library, median over rounds."""
    cols = ["libcrypto", "libssl", "libc", "interpreter", *(["kernel"] if clock else []),
            "other"]
    med = {side: {c: _median([r.get(c, 0.0) for r in runs]) for c in cols}
           for side, runs in rows.items()}
    total = {side: _median([sum(r.values()) for r in runs]) for side, runs in rows.items()}
    base = total.get("s_time")

    def cell(v: float) -> str:
        return f"{v:,.0f} µs" if clock else f"{v / 1e3:,.0f} k"

    lines = ["| side | handshakes counted | " + " | ".join(cols) + " | total | vs s_time |",
             "|---|---|" + "---|" * (len(cols) + 2)]
    for side in rows:
        ratio = f"{total[side] / base:.3f}" if base else "—"
        tot = f"{total[side]:,.0f} µs" if clock else f"{total[side] / 1e6:.2f} M"
        lines.append(f"| {side} | {'+'.join(map(str, extras[side]))} | "
                     + " | ".join(cell(med[side][c]) for c in cols) + f" | {tot} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int,
                    help="handshakes in the small run (default 20; --clock: 300); s_time, "
                         "which runs for seconds: a tenth as seconds (--clock: a thousandth)")
    ap.add_argument("--large", type=int,
                    help="handshakes in the large run (default 220; --clock: 3000)")
    ap.add_argument("--sides", default=",".join(SIDES), help=f"a list of {', '.join(SIDES)}")
    ap.add_argument("--clock", action="store_true",
                    help="CPU time by library (perf's cpu-clock samples), not instructions")
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternating rounds; the table gives medians (useful with --clock)")
    ap.add_argument("--drive", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.drive:
        _drive(args.drive, json.loads(args.work), args.n)
        return 0
    small_n = args.small if args.small is not None else (300 if args.clock else 20)
    large_n = args.large if args.large is not None else (3000 if args.clock else 220)
    sides = [s for s in args.sides.split(",") if s]
    if unknown := [s for s in sides if s not in SIDES]:
        ap.error(f"unknown side(s) {', '.join(unknown)}; choose from {', '.join(SIDES)}")
    if large_n <= small_n:
        ap.error("--large must be more than --small")
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if "s_time" in sides and (_s_time_seconds(large_n, args.clock)
                              <= _s_time_seconds(small_n, args.clock)):
        ap.error("s_time's large run would last no longer than its small one: "
                 "raise --large or leave s_time out")
    needs = ["perf"] if args.clock else ["valgrind", "callgrind_annotate"]
    if missing := [t for t in needs if shutil.which(t) is None]:
        raise SystemExit(f"needs {', '.join(missing)} (Debian: apt-get install "
                         f"{'linux-perf' if args.clock else 'valgrind'})")
    sys.path[:0] = [str(ROOT), str(HERE)]
    from bench_tls import lab_work

    from lab.stack import LabStack

    tmp = Path(tempfile.mkdtemp(prefix="edgewatch-bench-tls-count-"))
    rows: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    extras: dict[str, list[int]] = {side: [] for side in sides}
    try:
        with LabStack("quick", speed=3600.0, run_dir=tmp / "lab") as lab:
            w = lab_work(lab)
            work = {"edge": w.edge, "port": str(w.port), "sni": w.server_name, "ca": str(w.ca)}
            for i in range(args.rounds):
                for side in sides[i % len(sides):] + sides[:i % len(sides)]:
                    small, large = ((_s_time_seconds(small_n, args.clock),
                                     _s_time_seconds(large_n, args.clock))
                                    if side == "s_time" else (small_n, large_n))
                    print(f"[bench_tls_count] round {i + 1}/{args.rounds} {side}: {small} and "
                          f"{large}", file=sys.stderr, flush=True)
                    a, done_a = _count(side, work, small, tmp, args.clock)
                    b, done_b = _count(side, work, large, tmp, args.clock)
                    extra = done_b - done_a
                    if extra <= 0:
                        raise SystemExit(f"{side}: the large run did no more handshakes")
                    ga, gb = _groups(a), _groups(b)
                    rows[side].append({k: (gb.get(k, 0) - ga.get(k, 0)) / extra
                                       for k in set(ga) | set(gb)})
                    extras[side].append(extra)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(_table(rows, extras, args.clock))
    return 0


if __name__ == "__main__":
    sys.exit(main())
