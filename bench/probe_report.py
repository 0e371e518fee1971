"""The Markdown report of the probe benchmark, and the facts of the machine it ran on."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
from pathlib import Path

from machine import cpu_model, memory_kib
from peer_blackbox import BLACKBOX
from probe_common import CLK_TCK, HTTP_PATH, OpFigures, Work, pct
from probe_cycles import CycleFigures, top_functions


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
