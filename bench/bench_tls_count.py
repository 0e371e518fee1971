"""Where a sequential TLS check's instructions go, library by library, against ``openssl s_time``.

    .venv/bin/python bench/bench_tls_count.py [--small 20] [--large 220]

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
            conn = await TlsSocket.connect(work["edge"], int(work["port"]))
            tls = await conn.handshake(ctx, work["sni"])
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


def _count(side: str, work: dict[str, str], n: int, folder: Path) -> tuple[dict[str, int], int]:
    """One callgrind run: instructions by object, and the handshakes it did."""
    out = folder / f"{side}.{n}.out"
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
    return _by_object(out), done


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
        else:
            out["other"] += count
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=20,
                    help="handshakes in the small run (s_time: seconds/10, at least 2)")
    ap.add_argument("--large", type=int, default=220, help="handshakes in the large run")
    ap.add_argument("--sides", default=",".join(SIDES), help=f"a list of {', '.join(SIDES)}")
    ap.add_argument("--drive", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.drive:
        _drive(args.drive, json.loads(args.work), args.n)
        return 0
    sides = [s for s in args.sides.split(",") if s]
    if unknown := [s for s in sides if s not in SIDES]:
        ap.error(f"unknown side(s) {', '.join(unknown)}; choose from {', '.join(SIDES)}")
    if args.large <= args.small:
        ap.error("--large must be more than --small")
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    sys.path[:0] = [str(ROOT), str(HERE)]
    from bench_tls import lab_work

    from lab.stack import LabStack

    tmp = Path(tempfile.mkdtemp(prefix="edgewatch-bench-tls-count-"))
    rows = []
    try:
        with LabStack("quick", speed=3600.0, run_dir=tmp / "lab") as lab:
            w = lab_work(lab)
            work = {"edge": w.edge, "port": str(w.port), "sni": w.server_name, "ca": str(w.ca)}
            for side in sides:
                small, large = ((max(2, args.small // 10), max(3, args.large // 10))
                                if side == "s_time" else (args.small, args.large))
                print(f"[bench_tls_count] {side}: {small} and {large}", file=sys.stderr,
                      flush=True)
                a, done_a = _count(side, work, small, tmp)
                b, done_b = _count(side, work, large, tmp)
                extra = done_b - done_a
                if extra <= 0:
                    raise SystemExit(f"{side}: the large run did no more handshakes")
                ga, gb = _groups(a), _groups(b)
                per = {k: (gb.get(k, 0) - ga.get(k, 0)) / extra for k in set(ga) | set(gb)}
                rows.append((side, extra, per))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cols = ["libcrypto", "libssl", "libc", "interpreter", "other"]
    base = next((sum(p.values()) for s, _, p in rows if s == "s_time"), None)
    print("| side | handshakes counted | " + " | ".join(cols) + " | total | vs s_time |")
    print("|---|---|" + "---|" * (len(cols) + 2))
    for side, extra, per in rows:
        total = sum(per.values())
        ratio = f"{total / base:.3f}" if base else "—"
        print(f"| {side} | {extra} | " + " | ".join(f"{per.get(c, 0) / 1e3:,.0f} k" for c in cols)
              + f" | {total / 1e6:.2f} M | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
