"""Probe cost: edgewatch cycles against the lab, and the same probes done by peer tools.

    .venv/bin/python bench/bench_probe.py [--cycles 60] [--probes 1000] [--budget 900] [--no-peers]

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

Every loop is bounded by a count and by a deadline (``--budget`` caps the whole run). All
traffic goes to the lab's loopback addresses; the script refuses a config that points elsewhere.
Progress goes to stderr; a Markdown report goes to stdout (``--json`` also saves raw figures).
Wall times on a shared 2-core machine are noisy; CPU time per operation is the figure to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import http.client
import ipaddress
import json
import os
import platform
import pstats
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import cpu_model, memory_kib  # noqa: E402

import pipeline.cycle as cycle_module  # noqa: E402
import pipeline.probe.rdns as rdns_module  # noqa: E402
from lab.stack import LabStack  # noqa: E402
from pipeline.clock import ScenarioClock  # noqa: E402
from pipeline.config import Config, Resolver, load_config  # noqa: E402
from pipeline.cycle import CycleRunner, CycleStats  # noqa: E402
from pipeline.probe.connect import describe_certificate, probe_connect, tls_contexts  # noqa: E402
from pipeline.probe.dns import _follow_chain, _make_query, probe_dns  # noqa: E402
from pipeline.runs import RunTracker  # noqa: E402
from pipeline.sinks.ndjson import NdjsonSink  # noqa: E402

BLACKBOX = "prometheus-blackbox-exporter"
HTTP_PATH = "/directory"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench_probe {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Budget:
    """One overall deadline; each phase gets min(its own cap, what is left)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def deadline(self, cap: float) -> float:
        return min(self.end, time.monotonic() + cap)

    def left(self) -> float:
        return self.end - time.monotonic()


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_only(cfg: Config) -> None:
    hosts = [r.address for r in cfg.resolvers]
    if cfg.rdns_resolver:
        hosts.append(cfg.rdns_resolver[0])
    bad = [h for h in hosts if not is_loopback(h)]
    if bad:
        raise SystemExit(f"refusing to run: config points off loopback: {bad}")


# -- edgewatch cycles --------------------------------------------------------------------------

@dataclass
class CycleFigures:
    stats: list[CycleStats]
    warmup: CycleStats | None
    ptr_queries: int
    cut_short: bool
    dns_rtt_ms: list[float] = field(default_factory=list)
    dns_timeouts: dict[str, int] = field(default_factory=dict)


async def run_cycles(cfg: Config, n: int, deadline: float, out: Path) -> CycleFigures:
    clock = ScenarioClock(cfg.clock.start, cfg.clock.anchor, cfg.clock.speed)
    runner = CycleRunner(cfg, clock, RunTracker(), [NdjsonSink(out)])
    ptr = 0
    rtts: list[float] = []
    timeouts: dict[str, int] = {}
    orig_ptr, orig_dns = rdns_module.probe_rdns, cycle_module.probe_dns

    async def counted(*args, **kwargs):  # count the PTR queries the cycle really sends
        nonlocal ptr
        ptr += 1
        return await orig_ptr(*args, **kwargs)

    async def observed(resolver, *args, **kwargs):  # answer times and timeouts per resolver
        result = await orig_dns(resolver, *args, **kwargs)
        if result.error_type == "dns.timeout":
            timeouts[resolver.name] = timeouts.get(resolver.name, 0) + 1
        elif result.rtt_us is not None:
            rtts.append(result.rtt_us / 1000)
        return result

    await runner.open()
    stats: list[CycleStats] = []
    warmup = None
    rdns_module.probe_rdns, cycle_module.probe_dns = counted, observed
    try:
        warmup = await runner.run_cycle()
        ptr = 0
        rtts.clear()
        timeouts.clear()
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            stats.append(await runner.run_cycle())
    finally:
        rdns_module.probe_rdns, cycle_module.probe_dns = orig_ptr, orig_dns
        await runner.close()
    return CycleFigures(stats, warmup, ptr, len(stats) < n, rtts, timeouts)


async def profile_cycles(cfg: Config, n: int, deadline: float, out: Path
                         ) -> tuple[cProfile.Profile, int]:
    clock = ScenarioClock(cfg.clock.start, cfg.clock.anchor, cfg.clock.speed)
    runner = CycleRunner(cfg, clock, RunTracker(), [NdjsonSink(out)])
    await runner.open()
    await runner.run_cycle()  # warm-up, not profiled
    prof = cProfile.Profile(time.process_time)
    done = 0
    try:
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            prof.enable()
            try:
                await runner.run_cycle()
            finally:
                prof.disable()
            done += 1
    finally:
        await runner.close()
    return prof, done


PLUMBING = ("/asyncio/", "/selectors.py", "/threading.py", "bench_probe.py")


def top_functions(prof: cProfile.Profile, key: str, limit: int = 10) -> list[tuple]:
    """(ncalls, tottime, cumtime, where) sorted by key; event-loop plumbing left out."""
    st = pstats.Stats(prof)
    rows = []
    for (path, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        if any(p in path for p in PLUMBING) or "_contextvars.Context" in func \
                or "select.epoll" in func:
            continue
        short = path
        for marker in ("site-packages/", "/lib/python3", str(ROOT) + "/"):
            if marker in short:
                short = short.split(marker, 1)[1]
        where = f"{func} ({short}:{line})" if path != "~" else func
        rows.append((nc, tt, ct, where))
    rows.sort(key=lambda r: r[2] if key == "cumulative" else r[1], reverse=True)
    return rows[:limit]


# -- single operations, edgewatch side ------------------------------------------------------------

@dataclass
class OpFigures:
    tool: str
    op: str
    requested: int
    done: int = 0
    ok: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    concurrency: int = 1
    note: str = ""
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def cpu_per_op_us(self) -> float | None:
        return self.cpu_s / self.done * 1e6 if self.done else None

    @property
    def ops_per_s(self) -> float | None:
        return self.ok / self.wall_s if self.wall_s > 0 else None


async def drive_async(fig: OpFigures, one: Callable[[], Awaitable[tuple[bool, str | None]]],
                      deadline: float) -> OpFigures:
    """Run `one` fig.requested times with fig.concurrency workers, stopping at the deadline."""
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < fig.requested and time.monotonic() < deadline:
            issued += 1
            ok, err = await one()
            fig.done += 1
            fig.ok += ok
            if err:
                fig.errors[err] = fig.errors.get(err, 0) + 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(fig.concurrency)))
    fig.cpu_s, fig.wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    if fig.done < fig.requested:
        fig.note = f"deadline hit after {fig.done}"
    return fig


@dataclass
class Work:
    """The shared workload of the single-operation comparisons."""

    resolver: Resolver
    qname: str
    edge: str
    port: int
    server_name: str
    ca: Path
    dns_timeout: float
    connect_timeout: float
    tls_timeout: float
    http_timeout: float


def ew_op(work: Work, op: str) -> Callable[[], Awaitable[tuple[bool, str | None]]]:
    contexts = tls_contexts(work.ca)

    async def dns() -> tuple[bool, str | None]:
        r = await probe_dns(work.resolver, work.qname, "A", work.dns_timeout)
        return r.ok, r.error_type

    async def tls() -> tuple[bool, str | None]:
        r = await probe_connect(work.edge, work.port, work.server_name, contexts,
                                work.connect_timeout, work.tls_timeout)
        return r.ok and r.tls_verified, r.error_type

    async def https() -> tuple[bool, str | None]:
        r = await probe_connect(work.edge, work.port, work.server_name, contexts,
                                work.connect_timeout, work.tls_timeout, HTTP_PATH,
                                work.http_timeout)
        return r.ok and r.http_status == 200, r.error_type

    return {"dns": dns, "tls": tls, "http": https}[op]


def ew_ops(work: Work, op: str, n: int, concurrency: int, deadline: float,
           warmup: int = 10) -> OpFigures:
    async def main() -> OpFigures:
        one = ew_op(work, op)
        for _ in range(warmup):
            await one()
        fig = OpFigures("edgewatch", op, n, concurrency=concurrency)
        return await drive_async(fig, one, deadline)

    return asyncio.run(main())


# -- breakdown of one DNS probe and one TLS check ---------------------------------------------

def cpu_us(fn: Callable[[], object], n: int, deadline: float) -> tuple[float, int]:
    """Mean CPU µs of fn over up to n calls (fewer if the deadline comes first)."""
    done = 0
    t0 = time.process_time()
    while done < n and time.monotonic() < deadline:
        fn()
        done += 1
    return (time.process_time() - t0) / max(done, 1) * 1e6, done


def breakdown(work: Work, n: int, deadline: float) -> list[tuple[str, float, int]]:
    """CPU of the pieces a probe is made of, each alone, in this process."""
    import dns.message
    import dns.query

    rows: list[tuple[str, float, int]] = []
    query = _make_query(work.qname, "A", work.resolver)
    response = dns.query.udp(query, work.resolver.address, port=work.resolver.port,
                             timeout=work.dns_timeout * 5)
    wire = response.to_wire()
    rows.append(("dns: make_query + to_wire",
                 *cpu_us(lambda: _make_query(work.qname, "A", work.resolver).to_wire(), n,
                         deadline)))
    rows.append((f"dns: message.from_wire of the answer ({len(wire)} B, "
                 f"{sum(len(r) for r in response.answer)} RRs)",
                 *cpu_us(lambda: dns.message.from_wire(wire), n, deadline)))
    rows.append(("dns: _follow_chain", *cpu_us(
        lambda: _follow_chain(response, work.qname, "A"), n, deadline)))
    rows.append(("dns: blocking dns.query.udp (socket + send + recv + parse)", *cpu_us(
        lambda: dns.query.udp(query, work.resolver.address, port=work.resolver.port,
                              timeout=work.dns_timeout), n // 4, deadline)))
    contexts = tls_contexts(work.ca)

    def blocking_tls() -> bytes:
        with socket.create_connection((work.edge, work.port), work.connect_timeout) as raw, \
                contexts[0].wrap_socket(raw, server_hostname=work.server_name) as tls:
            return tls.getpeercert(binary_form=True) or b""

    der = blocking_tls()
    rows.append(("tls: describe_certificate (x509 parse, SAN, sha256)",
                 *cpu_us(lambda: describe_certificate(der), n, deadline)))
    rows.append(("tls: blocking socket + ssl.wrap_socket handshake",
                 *cpu_us(blocking_tls, n // 4, deadline)))

    async def async_tls() -> list[tuple[str, float, int]]:
        async def plain() -> None:
            _r, w = await asyncio.open_connection(work.edge, work.port, ssl=contexts[0],
                                                  server_hostname=work.server_name)
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()

        async def probe() -> None:
            await probe_connect(work.edge, work.port, work.server_name, contexts,
                                work.connect_timeout, work.tls_timeout)

        out = []
        for label, fn in (("tls: asyncio open_connection(ssl=…) + close", plain),
                          ("tls: probe_connect (start_tls, facts, close)", probe)):
            done = 0
            t0 = time.process_time()
            while done < n // 4 and time.monotonic() < deadline:
                await fn()
                done += 1
            out.append((label, (time.process_time() - t0) / max(done, 1) * 1e6, done))
        return out

    rows += asyncio.run(async_tls())
    return rows


# -- blackbox_exporter ------------------------------------------------------------------------

def proc_cpu(pid: int) -> float:
    """utime+stime of a process (all its threads, live and exited), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def go_duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def blackbox_config(work: Work) -> str:
    ca, name = json.dumps(str(work.ca)), json.dumps(work.server_name)
    dns_t = go_duration(work.dns_timeout)
    tls_t = go_duration(work.connect_timeout + work.tls_timeout)
    http_t = go_duration(work.connect_timeout + work.tls_timeout + work.http_timeout)
    return f"""modules:
  ew_dns:
    prober: dns
    timeout: {dns_t}
    dns:
      query_name: {json.dumps(work.qname)}
      query_type: A
      transport_protocol: udp
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      recursion_desired: true
      valid_rcodes: [NOERROR]
  ew_tls:
    prober: tcp
    timeout: {tls_t}
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls: true
      tls_config:
        ca_file: {ca}
        server_name: {name}
  ew_http:
    prober: http
    timeout: {http_t}
    http:
      method: GET
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      valid_status_codes: [200]
      fail_if_not_ssl: true
      follow_redirects: false
      headers:
        Host: {name}
      tls_config:
        ca_file: {ca}
        server_name: {name}
"""


def _socket_table() -> dict[str, tuple[str, str, str]]:
    """inode -> (proto, local, remote) for every IPv4/IPv6 TCP/UDP socket of the namespace."""
    table = {}
    for proto in ("tcp", "udp", "tcp6", "udp6"):
        try:
            with open(f"/proc/net/{proto}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            table[parts[9]] = (proto, _addr(parts[1]), _addr(parts[2]))
    return table


def _addr(hexaddr: str) -> str:
    host, port = hexaddr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    else:  # four little-endian 32-bit words
        ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
    return f"{ip}:{int(port, 16)}"


class SocketWatch(threading.Thread):
    """Samples a process's sockets; remembers every remote address that is not loopback/unset."""

    def __init__(self, pid: int, deadline: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.deadline = pid, deadline
        self.samples = 0
        self.seen: set[tuple[str, str, str]] = set()
        self.off_loopback: set[tuple[str, str, str]] = set()
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def run(self) -> None:
        while not self._halt.is_set() and time.monotonic() < self.deadline:
            try:
                inodes = set()
                for fd in os.listdir(f"/proc/{self.pid}/fd"):
                    with contextlib.suppress(OSError):
                        target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                        if target.startswith("socket:["):
                            inodes.add(target[8:-1])
            except OSError:
                return  # process gone
            table = _socket_table()
            for inode in inodes & table.keys():
                proto, local, remote = table[inode]
                self.seen.add((proto, local, remote))
                rhost = remote.rsplit(":", 1)[0]
                if rhost not in ("0.0.0.0", "::") and not is_loopback(rhost):
                    self.off_loopback.add((proto, local, remote))
            self.samples += 1
            self._halt.wait(0.05)


class Blackbox:
    """A blackbox_exporter process on 127.0.0.1 with the three modules; always stopped."""

    def __init__(self, work: Work, folder: Path) -> None:
        self.work = work
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.stderr_path = folder / "blackbox.stderr"

    def start(self, deadline: float) -> None:
        cfg = self.folder / "blackbox.yml"
        cfg.write_text(blackbox_config(self.work))
        check = subprocess.run([BLACKBOX, f"--config.file={cfg}", "--config.check"],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"config check failed: {check.stderr.strip()[-400:]}")
        self.proc = subprocess.Popen(
            [BLACKBOX, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=self.stderr_path.open("wb"), cwd=self.folder)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited {self.proc.returncode}: "
                                   f"{self.stderr_path.read_text()[-400:]}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/-/healthy")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            time.sleep(0.1)
        raise RuntimeError("not healthy before the deadline")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def target(self, op: str) -> str:
        w = self.work
        if op == "dns":
            return f"{w.resolver.address}:{w.resolver.port}"
        if op == "tls":
            return f"{w.edge}:{w.port}"
        return f"https://{w.edge}:{w.port}{HTTP_PATH}"

    def probe_once(self, conn: http.client.HTTPConnection, op: str) -> tuple[bool, str | None]:
        path = f"/probe?module=ew_{op}&target={self.target(op)}"
        conn.request("GET", path)
        body = conn.getresponse().read().decode()
        ok = re.search(r"^probe_success 1$", body, re.M) is not None
        return ok, None if ok else "probe_success 0"

    def drive(self, op: str, n: int, concurrency: int, deadline: float,
              warmup: int = 10) -> OpFigures:
        assert self.proc is not None
        fig = OpFigures("blackbox_exporter", op, n, concurrency=concurrency)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        for _ in range(warmup):
            self.probe_once(conn, op)
        conn.close()
        lock = threading.Lock()
        issued = 0

        def worker() -> None:
            nonlocal issued
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                while time.monotonic() < deadline:
                    with lock:
                        if issued >= n:
                            return
                        issued += 1
                    try:
                        ok, err = self.probe_once(c, op)
                    except (OSError, http.client.HTTPException) as exc:
                        ok, err = False, f"driver: {type(exc).__name__}"
                        c.close()
                        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    with lock:
                        fig.done += 1
                        fig.ok += ok
                        if err:
                            fig.errors[err] = fig.errors.get(err, 0) + 1
            finally:
                c.close()

        cpu0, wall0 = proc_cpu(self.proc.pid), time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            for f in [pool.submit(worker) for _ in range(concurrency)]:
                f.result()
        fig.wall_s = time.perf_counter() - wall0
        fig.cpu_s = proc_cpu(self.proc.pid) - cpu0
        if fig.done < n:
            fig.note = f"deadline hit after {fig.done}"
        return fig

    def idle_cpu(self, seconds: float = 2.0) -> float:
        assert self.proc is not None
        c0 = proc_cpu(self.proc.pid)
        time.sleep(seconds)
        return (proc_cpu(self.proc.pid) - c0) / seconds


# -- external one-shot tools (dnsperf, openssl s_time) ------------------------------------------

@dataclass
class ToolRun:
    argv: list[str]
    returncode: int | None
    cpu_s: float
    wall_s: float
    output: str


def run_tool(argv: list[str], deadline: float, stdin: bytes | None = None) -> ToolRun:
    """Run a child, killing it at the deadline; its own CPU from wait4's rusage."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
        if stdin:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
    return ToolRun(argv, proc.returncode, usage.ru_utime + usage.ru_stime, wall, text)


def dnsperf(work: Work, queries: int, outstanding: int, folder: Path, deadline: float
            ) -> tuple[OpFigures, ToolRun]:
    data = folder / "dnsperf.txt"
    data.write_text(f"{work.qname} A\n")
    seconds = max(1, int(deadline - time.monotonic()))
    argv = ["dnsperf", "-s", work.resolver.address, "-p", str(work.resolver.port), "-d",
            str(data), "-n", str(queries), "-q", str(outstanding), "-c", "1", "-t", "1",
            "-l", str(seconds), "-e"]
    run = run_tool(argv, deadline + 5)

    def num(label: str) -> float:
        m = re.search(rf"{label}:\s+([\d.]+)", run.output)
        return float(m.group(1)) if m else float("nan")

    fig = OpFigures("dnsperf", "dns", queries, concurrency=outstanding)
    fig.done = int(num("Queries sent")) if "Queries sent" in run.output else 0
    fig.ok = int(num("Queries completed")) if "Queries completed" in run.output else 0
    fig.cpu_s = run.cpu_s
    fig.wall_s = num("Run time \\(s\\)")
    lost = num("Queries lost")
    if lost == lost and lost:  # not NaN, not zero
        fig.errors["lost"] = int(lost)
    codes = re.search(r"Response codes:\s+(.*)", run.output)
    fig.note = f"response codes: {codes.group(1).strip()}" if codes else ""
    if run.returncode != 0:
        fig.note = f"exit {run.returncode}: {run.output.strip()[-300:]}"
    return fig, run


def s_time(work: Work, seconds: int, www: bool, deadline: float) -> tuple[OpFigures, ToolRun]:
    argv = ["openssl", "s_time", "-connect", f"{work.edge}:{work.port}", "-new",
            "-time", str(seconds), "-CAfile", str(work.ca), "-verify", "2"]
    if www:
        argv += ["-www", HTTP_PATH]
    run = run_tool(argv, deadline)
    fig = OpFigures("openssl s_time", "http" if www else "tls", 0, concurrency=1)
    m = re.search(r"(\d+) connections in ([\d.]+)s; ([\d.]+) connections/user sec", run.output)
    if m:
        fig.done = fig.ok = fig.requested = int(m.group(1))
    fig.wall_s = run.wall_s  # its own "real seconds" line is whole seconds only
    fig.cpu_s = run.cpu_s
    if not m or run.returncode != 0:
        fig.note = f"exit {run.returncode}: {run.output.strip()[-300:]}"
    return fig, run


# -- facts and report ---------------------------------------------------------------------------

def version_of(argv: list[str], pattern: str = r"\S.*") -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(0).strip() if m else "?"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine_facts() -> dict[str, str]:
    cpu = cpu_model()
    mem_kib = memory_kib()
    import cryptography
    import dns.version
    return {
        "cpu": f"{os.cpu_count()} vCPU ({cpu}), shared with other processes",
        "memory": f"{mem_kib // 2**20} GiB",
        "os": f"{platform.system()} {platform.release()}, "
              + version_of(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
        "python": f"{platform.python_version()}, dnspython {dns.version.version}, "
                  f"cryptography {cryptography.__version__}, "
                  f"{__import__('ssl').OPENSSL_VERSION}",
        "blackbox_exporter": version_of([BLACKBOX, "--version"], r"version \S+"),
        "dnsperf": version_of(["dnsperf", "-h"], r"Version \S+"),
        "openssl": version_of(["openssl", "version"]),
        "unbound": version_of(["unbound", "-V"], r"Version \S+"),
        "kresd": version_of(["kresd", "--version"], r"Knot Resolver, version \S+"),
        "pdns_recursor": version_of(["pdns_recursor", "--version"], r"PowerDNS Recursor \S+"),
    }


def us(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f} µs"


def ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}"


def report(r: dict) -> str:
    lines: list[str] = []
    add = lines.append
    cyc: CycleFigures = r["cycles"]
    s = cyc.stats
    add(f"### Probe results, {r['date']}\n")
    add(f"Command: `{r['command']}`  ")
    add(f"Lab: study-14d at speed {r['speed']:g}, {r['resolvers']} resolvers, "
        f"{r['targets']} targets, timeouts {r['timeouts']} (real seconds), rdns on, "
        f"concurrency limit {r['limit']}; lab started in {r['lab_start_s']:.2f} s.  ")
    add(f"Load average before / after: {r['load_before']} / {r['load_after']}.\n")
    if s:
        real = [x.real_seconds for x in s]
        cpu = [x.cpu_seconds for x in s]
        q = sum(x.queries for x in s)
        c = sum(x.connects for x in s)
        docs = [x.documents for x in s]
        fails: dict[str, int] = {}
        for x in s:
            for k, v in x.failures.items():
                fails[k] = fails.get(k, 0) + v
        ptr_per = cyc.ptr_queries / len(s)
        add(f"#### edgewatch cycle ({len(s)} cycles back to back after 1 warm-up"
            + (", **cut short by the deadline**" if cyc.cut_short else "") + ")\n")
        add("| figure | median | p90 | mean |")
        add("|---|---|---|---|")
        add(f"| real seconds per cycle | {statistics.median(real):.3f} | {pct(real, 90):.3f} | "
            f"{statistics.mean(real):.3f} |")
        add(f"| CPU seconds per cycle | {statistics.median(cpu):.3f} | {pct(cpu, 90):.3f} | "
            f"{statistics.mean(cpu):.3f} |")
        add(f"| documents per cycle | {statistics.median(docs):.0f} | {pct(docs, 90):.0f} | "
            f"{statistics.mean(docs):.1f} |")
        add("")
        add(f"Per cycle: {q / len(s):.0f} DNS queries, {ptr_per:.1f} PTR queries, "
            f"{c / len(s):.1f} address checks (TCP+TLS+HTTP, one per distinct address), "
            f"{sum(docs) / len(s):.1f} documents. Failures over all cycles (scenario faults, "
            f"plus timeouts when load delays the lab): {json.dumps(fails, sort_keys=True)}.  ")
        if cyc.dns_rtt_ms:
            add(f"DNS answer time as edgewatch saw it (timeout {r['dns_timeout']:g} s): median "
                f"{statistics.median(cyc.dns_rtt_ms):.0f} ms, p90 {pct(cyc.dns_rtt_ms, 90):.0f} "
                f"ms, max {max(cyc.dns_rtt_ms):.0f} ms; timeouts by resolver: "
                f"{json.dumps(dict(sorted(cyc.dns_timeouts.items())))}.  ")
        if r.get("lab_cpu"):
            parts = ", ".join(f"{k} {v / len(s) * 1000:.0f} ms" for k, v in
                              sorted(r["lab_cpu"].items(), key=lambda kv: -kv[1]))
            add(f"The lab's own CPU per cycle over the same cycles (/proc, 10 ms ticks): "
                f"{parts}.  ")
        total_cpu = sum(cpu)
        add(f"Whole-cycle CPU divided out: {total_cpu / q * 1e6:,.0f} µs per DNS query, "
            f"{total_cpu / c * 1e6:,.0f} µs per address check, "
            f"{total_cpu / sum(docs) * 1e6:,.0f} µs per document (each figure carries the "
            "whole cycle).  ")
        iso_ = {f.op: f for f in r["ops"] if f.tool == "edgewatch"}
        if "dns" in iso_ and "http" in iso_ and iso_["dns"].done and iso_["http"].done:
            dns_us = iso_["dns"].cpu_per_op_us or 0
            http_us = iso_["http"].cpu_per_op_us or 0
            per_cycle = statistics.mean(cpu) * 1e6
            probes = (q / len(s) + ptr_per) * dns_us + c / len(s) * http_us
            add(f"Attribution with the isolated costs below: probes ≈ {probes / 1e3:.1f} ms "
                f"of {per_cycle / 1e3:.1f} ms CPU per cycle ({probes / per_cycle:.0%}); the rest "
                f"(documents, runs, sink, task plumbing, failure paths) ≈ "
                f"{(per_cycle - probes) / 1e3:.1f} ms.")
        add("")
    if r.get("profile"):
        prof, n = r["profile"]
        add(f"#### Where the CPU goes (cProfile, CPU-time clock, {n} cycles; asyncio/selectors "
            "frames left out; a coroutine's calls count its resumptions)\n")
        for key in ("cumulative", "tottime"):
            add(f"Top 10 by {key}:\n")
            add("| calls | tottime s | cumtime s | function |")
            add("|---|---|---|---|")
            for nc, tt, ct, where in top_functions(prof, key):
                add(f"| {nc} | {tt:.3f} | {ct:.3f} | `{where}` |")
            add("")
    if r.get("breakdown"):
        add("#### Pieces of one probe, each alone, sequential (CPU µs per call)\n")
        add("| piece | CPU/call | calls |")
        add("|---|---|---|")
        for label, cpu_call, done in r["breakdown"]:
            add(f"| {label} | {cpu_call:,.0f} µs | {done} |")
        add("")
    ops: list[OpFigures] = r["ops"]
    if ops:
        w: Work = r["work"]
        add(f"#### Same operation, edgewatch vs blackbox_exporter (CPU per probe; "
            f"{r['probes']} probes each, {r['concurrency']} concurrent)\n")
        add(f"DNS = A `{w.qname}` via {w.resolver.name} ({w.resolver.address}); TLS = TCP + "
            f"verifying TLS handshake with {w.edge}:{w.port}, SNI `{w.server_name}`, lab CA; "
            f"HTTP = TLS + `GET {HTTP_PATH}` (status 200 required).\n")
        add("| op | edgewatch CPU/op | blackbox CPU/op | ratio ew/bb | edgewatch ok/done | "
            "blackbox ok/done | ew wall ops/s | bb wall ops/s |")
        add("|---|---|---|---|---|---|---|---|")
        by = {(f.tool, f.op): f for f in ops}
        for op in ("dns", "tls", "http"):
            e, b = by.get(("edgewatch", op)), by.get(("blackbox_exporter", op))
            if e is None:
                continue
            add(f"| {op} | {us(e.cpu_per_op_us)} | {us(b.cpu_per_op_us if b else None)} | "
                f"{ratio(e.cpu_per_op_us, b.cpu_per_op_us if b else None)} | "
                f"{e.ok}/{e.done} | {f'{b.ok}/{b.done}' if b else '–'} | "
                f"{e.ops_per_s or 0:,.0f} | "
                f"{f'{b.ops_per_s:,.0f}' if b and b.ops_per_s else '–'} |")
        add("")
        if r.get("blackbox_error"):
            add(f"blackbox_exporter could not run: `{r['blackbox_error']}`\n")
        if r.get("blackbox_idle") is not None:
            add(f"blackbox_exporter idle CPU: {r['blackbox_idle'] * 1000:.1f} ms/s (not "
                "subtracted). Its CPU includes serving each /probe request and rendering its "
                "metrics, i.e. its cost as deployed; /proc/<pid>/stat counts in "
                f"{1000 // CLK_TCK} ms ticks, ±{1 / CLK_TCK / max(r['probes'], 1) * 1e6:.0f} µs "
                "per probe here.  ")
        if r.get("socket_watch"):
            sw = r["socket_watch"]
            add(f"Its sockets, sampled {sw['samples']} times while it ran: "
                f"{sw['distinct']} distinct, remote addresses off loopback: "
                f"{sw['off_loopback'] or 'none'}.")
        for f in ops:
            if f.errors or f.note:
                add(f"- {f.tool} {f.op}: errors {json.dumps(f.errors)} {f.note}")
        add("")
    thr = r.get("throughput") or []
    if thr:
        add(f"#### DNS throughput against {r['work'].resolver.name} "
            f"(A `{r['work'].qname}`, every answer fetched from the lab's authoritative server: "
            "TTL 0 at this speed)\n")
        add("| round | tool | queries | completed | wall s | q/s | CPU/query |")
        add("|---|---|---|---|---|---|---|")
        for i, (d, e) in enumerate(thr, 1):
            for f in (d, e):
                add(f"| {i} | {f.tool} ({f.concurrency} in flight) | {f.done} | {f.ok} | "
                    f"{f.wall_s:.2f} | {f.ops_per_s or 0:,.0f} | {us(f.cpu_per_op_us)} |")
        dq = statistics.median([d.ops_per_s or 0 for d, _ in thr])
        eq = statistics.median([e.ops_per_s or 0 for _, e in thr])
        dc = statistics.median([d.cpu_per_op_us or 0 for d, _ in thr])
        ec = statistics.median([e.cpu_per_op_us or 0 for _, e in thr])
        add(f"\nMedian q/s ratio edgewatch/dnsperf = {ratio(eq, dq)}; CPU per query ratio "
            f"edgewatch/dnsperf = {ratio(ec, dc)}.")
        for d, e in thr:
            for f in (d, e):
                if f.errors or f.note:
                    add(f"- {f.tool}: {json.dumps(f.errors)} {f.note}")
        add("")
    hs = r.get("handshakes") or []
    if hs:
        add(f"#### Sequential handshakes, `openssl s_time -new` vs `probe_connect` "
            f"({r['stime_seconds']} s each; s_time has no SNI option, the lab edge ignores it)\n")
        add("| op | tool | handshakes | wall s | per s | CPU/handshake | ratio ew/openssl |")
        add("|---|---|---|---|---|---|---|")
        for o, e in hs:
            for f in (o, e):
                add(f"| {f.op} | {f.tool} | {f.done} | {f.wall_s:.2f} | "
                    f"{(f.done / f.wall_s) if f.wall_s else 0:,.0f} | {us(f.cpu_per_op_us)} | "
                    + (ratio(e.cpu_per_op_us, o.cpu_per_op_us) if f is e else "") + " |")
        for o, e in hs:
            for f in (o, e):
                if f.errors or f.note:
                    add(f"- {f.tool} {f.op}: {json.dumps(f.errors)} {f.note}")
        add("")
    for name, err in r.get("peer_errors", {}).items():
        add(f"- {name} could not run: `{err}`")
    add("\nMachine: " + "; ".join(f"{k} {v}" for k, v in r["facts"].items()) + ".")
    return "\n".join(lines) + "\n"


# -- main -------------------------------------------------------------------------------------

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
    if args.json:
        raw = {k: v for k, v in r.items() if k not in ("profile", "cycles", "work")}
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
