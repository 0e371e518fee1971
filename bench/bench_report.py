"""How long ``edgewatch report`` takes over one million check documents in a real node.

Generates a 14-day history (10 resolvers, 2-minute cycles, ~10 addresses per answer, addresses
rotating with a mean run of about an hour, rare DNS and TLS failures), bulk-loads it into the
devstack node through ``edgewatch setup``'s production mappings, then times ``build_report``
(and ``build_allowlist``) against Elasticsearch; ``--with-store`` also writes the same history
as an ndjson store and times the streaming reader on it. Prints one JSON line of figures.

    .venv/bin/python bench/bench_report.py            # starts its own node
    .venv/bin/python bench/bench_report.py --es-url http://127.0.0.1:9200

The first command after the load is the worst case: a node just started has not compiled its
aggregation code yet (``jvm_cpu``: with the node's pid file, the figures say how much of the
node's CPU went to its JIT). Then the same command again, each in a fresh process, with the
shard request cache off: the node redoes every search, as a long-running cluster would for
data it has not answered before.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from elasticsearch import Elasticsearch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jvm_cpu import by_kind, pid_from_file, threads_cpu

from devstack.node import start_node
from pipeline.commands.setup import setup
from pipeline.config import ElasticsearchSettings
from pipeline.es import names
from pipeline.report import ElasticsearchSource, Filters, StoreSource, build_report
from pipeline.report.allowlist import build_allowlist

START = datetime(2026, 3, 2, tzinfo=UTC)
# Runs the CLI and reports the child's own peak RSS (VmHWM survives nothing from the parent,
# unlike ru_maxrss of a forked child).
CLI = """
import re, sys
from pipeline.cli import main
rc = main(sys.argv[1:])
hwm = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
print(f"VMHWM {hwm}", file=sys.stderr)
sys.exit(rc)
"""


def iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Generator:
    """A reproducible rotation: each resolver keeps ~``answer`` addresses from its own region
    of the pool and replaces each with probability ``1/mean_run`` per cycle. With ``drift``,
    that share of every region moves each day to addresses anywhere in a pool of
    ``prefixes`` announced prefixes (the first ``start_prefixes`` at first): lists go stale."""

    def __init__(self, docs: int, resolvers: int = 10, answer: int = 10, interval_s: int = 120,
                 mean_run: float = 30.0, seed: int = 7, prefixes: int = 12,
                 start_prefixes: int | None = None, drift: float = 0.0,
                 region: int = 120, max_cycles: int | None = None, targets: int = 1) -> None:
        self.rng = random.Random(seed)
        self.resolvers = [f"r{i}" for i in range(resolvers)]
        # One target keeps the names of the earlier benchmark; more are api1…, api2….
        self.targets = ["api.example.net"] + [f"api{t}.example.net" for t in range(1, targets)]
        self.answer = answer
        self.interval = timedelta(seconds=interval_s)
        self.docs = docs
        self.max_cycles = max_cycles
        self.p_change = 1.0 / mean_run
        self.drift = drift
        self.pool = []  # (ip, prefix24, prefix, asn, domain)
        for p in range(prefixes):
            base = (23 << 24) | (p << 10)  # 23.x.y.0/22 announced prefixes
            prefix = f"23.{(base >> 16) & 255}.{(base >> 8) & 255}.0/22"
            for s in range(4):
                for h in range(8):
                    a = base | (s << 8) | (10 + h)
                    ip = f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"
                    p24 = f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.0/24"
                    self.pool.append((ip, p24, prefix, 64500 + p % 3,
                                      f"a{ip.replace('.', '-')}.deploy.example.net"))
        first = self.pool[: 32 * (start_prefixes or prefixes)]
        self.regions = {(t, r): self.rng.sample(first, region)
                        for t in self.targets for r in self.resolvers}
        self.runs: dict[tuple[str, str], dict[str, dict]] = {}  # open runs of each stream
        self.closed: list[dict] = []

    def _run_id(self, stream: tuple[str, str], ip: str, start: datetime) -> str:
        target, resolver = stream
        key = f"{resolver}|{ip}|{start}" if target == self.targets[0] else \
            f"{target}|{resolver}|{ip}|{start}"
        return hashlib.sha1(key.encode()).hexdigest()[:20]

    def lines(self, namespace: str) -> Iterator[tuple[str, bytes]]:
        """(UTC day, ndjson document) in time order."""
        self.current = {k: self.rng.sample(region, self.answer)
                        for k, region in self.regions.items()}
        emitted, c = 0, -1
        while emitted < self.docs:  # whole cycles until the requested number of documents
            c += 1
            if self.max_cycles is not None and c >= self.max_cycles:
                break
            when = START + c * self.interval
            stamp = iso(when)
            day = stamp[:10]
            if self.drift and c and when.hour == 0 and when.minute == 0 and when.second == 0:
                for region in self.regions.values():
                    for i in self.rng.sample(range(len(region)), round(self.drift * len(region))):
                        region[i] = self.rng.choice(self.pool)
            for stream in self.regions:
                for doc in self._cycle(c, stream, when, stamp):
                    emitted += 1
                    yield day, orjson.dumps(doc)

    def _cycle(self, c: int, stream: tuple[str, str], when: datetime,
               stamp: str) -> Iterator[dict]:
        """The documents of one (target, resolver) in cycle ``c``; runs updated."""
        target, r = stream
        check = hashlib.sha1(f"{c}{r}{target}".encode()).hexdigest()[:20]
        base = {"@timestamp": stamp, "event.kind": "event",
                "event.dataset": names.CHECK_DATASET, "edgewatch.schema": 2,
                "edgewatch.check.id": check, "observer.name": "bench",
                "dns.question.name": target, "dns.question.type": "A",
                "edgewatch.resolver.name": r}
        if self.rng.random() < 0.005:
            yield {**base, "event.outcome": "failure", "error.type": "dns.timeout"}
            return
        answer = self.current[stream]
        for i in range(len(answer)):
            if self.rng.random() < self.p_change:
                answer[i] = self.rng.choice(self.regions[stream])
        ips = {a[0]: a for a in answer}
        runs = self.runs.setdefault(stream, {})
        for ip in [ip for ip in runs if ip not in ips]:
            run = runs.pop(ip)
            run["end"] = when
            self.closed.append(run)
        for ip, (_, p24, prefix, asn, domain) in ips.items():
            run = runs.get(ip)
            if run is None:
                run = runs[ip] = {"stream": stream, "ip": ip, "start": when,
                                  "last": when, "checks": 0, "net": ips[ip]}
            run["last"] = when
            run["checks"] += 1
            doc = {**base, "edgewatch.dns.answer_count": len(ips), "destination.ip": ip,
                   "edgewatch.destination.prefix24": p24,
                   "edgewatch.destination.prefix": prefix,
                   "destination.as.number": asn, "destination.domain": domain,
                   "tcp.rtt.connect.us": 2000 + int(self.rng.expovariate(1 / 800)),
                   "edgewatch.run.id": self._run_id(stream, ip, run["start"])}
            if self.rng.random() < 0.003:
                doc.update({"event.outcome": "failure", "error.type": "tls.handshake"})
            else:
                doc.update({"event.outcome": "success", "tls.rtt.handshake.us":
                            6000 + int(self.rng.expovariate(1 / 2500))})
            yield doc

    def run_docs(self) -> Iterator[dict]:
        still_open = [dict(r, end=None) for runs in self.runs.values() for r in runs.values()]
        for run in self.closed + still_open:
            _, p24, prefix, asn, domain = run["net"]
            until = run["end"] or run["last"]
            doc = {"@timestamp": iso(run["start"]), "event.kind": "state",
                   "event.dataset": names.RUN_DATASET, "edgewatch.run.version": run["checks"],
                   "observer.name": "bench", "dns.question.name": run["stream"][0],
                   "dns.question.type": "A", "edgewatch.resolver.name": run["stream"][1],
                   "destination.ip": run["ip"], "edgewatch.destination.prefix24": p24,
                   "edgewatch.destination.prefix": prefix, "destination.as.number": asn,
                   "destination.domain": domain,
                   "edgewatch.run.id": self._run_id(run["stream"], run["ip"], run["start"]),
                   "edgewatch.run.start": iso(run["start"]),
                   "edgewatch.run.last_seen": iso(run["last"]),
                   "edgewatch.run.open": run["end"] is None,
                   "edgewatch.run.checks": run["checks"], "edgewatch.run.gaps": 0,
                   "edgewatch.run.duration.s": int((until - run["start"]).total_seconds()),
                   "edgewatch.run.observed.s": int((run["last"] - run["start"]).total_seconds())}
            if run["end"] is not None:
                doc["edgewatch.run.end"] = iso(run["end"])
            yield doc


def scale(docs: int) -> dict[str, int]:
    """Targets and resolvers for ``docs`` checks over ≈ 14 days of 2-minute cycles of ≈ 10
    addresses: 1M → 1 × 10 (the original history), 3M → 3 × 10, 10M → 5 × 20."""
    streams = max(1, round(docs / (10 * 10_080)))
    resolvers = 10 if streams <= 30 else 20
    return {"resolvers": resolvers, "targets": max(1, -(-streams // resolvers))}


def load(es: Elasticsearch, gen: Generator, namespace: str, store: Path | None,
         chunk: int = 5000) -> tuple[int, float]:
    """Bulk-create the checks (raw _bulk bodies, two threads) and index the run summaries."""
    stream = names.check_data_stream(namespace)
    action = orjson.dumps({"create": {"_index": stream}}) + b"\n"
    files: dict[str, io.BufferedWriter] = {}
    t0 = time.monotonic()
    count = 0

    def send(body: bytes) -> None:
        resp = es.bulk(operations=body, filter_path="errors,items.*.error")
        if resp.get("errors"):
            raise RuntimeError(str(resp)[:500])

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures, buf, n = [], [], 0
        for day, line in gen.lines(namespace):
            buf.append(action + line + b"\n")
            n += 1
            if store is not None:
                fh = files.get(day)
                if fh is None:
                    fh = files[day] = open(store / f"checks-{day}.ndjson", "wb")  # noqa: SIM115
                fh.write(line + b"\n")
            if n == chunk:
                futures.append(pool.submit(send, b"".join(buf)))
                count += n
                buf, n = [], 0
                if len(futures) > 4:
                    futures.pop(0).result()
                if count % 100_000 == 0:
                    print(f"  loaded {count:,} checks", file=sys.stderr)
        if buf:
            futures.append(pool.submit(send, b"".join(buf)))
            count += n
        for f in futures:
            f.result()
    for fh in files.values():
        fh.close()
    runs_index = names.runs_index(namespace)
    body, runs_lines = [], []
    for doc in gen.run_docs():
        body.append(orjson.dumps({"index": {"_index": runs_index, "_id": doc["edgewatch.run.id"]}})
                    + b"\n" + orjson.dumps(doc) + b"\n")
        runs_lines.append(orjson.dumps({"_id": doc["edgewatch.run.id"], **doc}))
        if len(body) == chunk:
            send(b"".join(body))
            body = []
    if body:
        send(b"".join(body))
    if store is not None:
        (store / "runs-2026-03-02.ndjson").write_bytes(b"\n".join(runs_lines) + b"\n")
    es.indices.refresh(index=f"{stream},{runs_index}")
    return count, time.monotonic() - t0


def settle(es: Elasticsearch, index: str, quiet_s: float = 5.0, limit_s: float = 300.0) -> float:
    """Wait until the node has run no merge on ``index`` for ``quiet_s``; the seconds waited.

    The bulk load packs 14 days of history into a few minutes, and the node goes on merging
    its segments for a while after the last request. A history that really took 14 days to
    arrive was merged as it came, so the report is timed on the settled index, not on one
    competing with its own merges for the same two cores (``limit_s`` bounds the wait)."""
    t0 = time.monotonic()
    quiet_since = None
    while time.monotonic() - t0 < limit_s:
        merges = es.indices.stats(index=index, metric="merge")["_all"]["total"]["merges"]
        now = time.monotonic()
        if merges["current"]:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= quiet_s:
            break
        time.sleep(0.5)
    return round(time.monotonic() - t0, 1)


def timed(fn, repeat: int = 2) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.monotonic()
        fn()
        out.append(round(time.monotonic() - t0, 2))
    return out


def example(out: Path) -> int:
    """The history behind the screenshot in docs/REPORT.md: 6 resolvers, 15-minute cycles,
    14 days, answers of 4 from regions of 24 addresses, 4% of each region moving per day."""
    gen = Generator(docs=10**9, max_cycles=96 * 14, resolvers=6, answer=4, interval_s=900,
                    mean_run=12, seed=3, prefixes=8, start_prefixes=5, drift=0.04, region=24)
    store = out / "data"
    store.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[bytes]] = {}
    for day, line in gen.lines("example"):
        files.setdefault(day, []).append(line)
    for day, lines in files.items():
        (store / f"checks-{day}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    runs = [orjson.dumps({"_id": d["edgewatch.run.id"], **d}) for d in gen.run_docs()]
    (store / "runs-2026-03-02.ndjson").write_bytes(b"\n".join(runs) + b"\n")
    from pipeline.report import render_html

    (out / "report.html").write_text(render_html(build_report(StoreSource(store), Filters())))
    print(out / "report.html")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--es-url", help="use this cluster instead of starting a devstack node")
    ap.add_argument("--with-store", action="store_true",
                    help="also write an ndjson store (~0.6 GB for 1M) and time it")
    ap.add_argument("--namespace", help="(with --es-url) reuse data loaded by an earlier run "
                    "into this namespace instead of loading again")
    ap.add_argument("--no-request-cache", action="store_true",
                    help="turn the shard request cache off on the namespace's indices for the "
                    "whole run (restored at the end), so that a repeated run over reused data "
                    "(--namespace) times the cluster's work, not its cache")
    ap.add_argument("--node-pid-file", type=Path, metavar="PATH",
                    help="(with --es-url, a local node) its pid file: the node's CPU during "
                    "each fresh-process command is split into JIT compiler threads and the rest")
    ap.add_argument("--example", type=Path, metavar="DIR",
                    help="instead: write a drifting 14-day, 15-minute history as an ndjson "
                    "store in DIR/data and its report as DIR/report.html (the docs example)")
    args = ap.parse_args()
    if args.example:
        return example(args.example)
    node, tmp = None, Path(tempfile.mkdtemp(prefix="edgewatch-bench-report-"))
    try:
        if args.es_url:
            url = args.es_url
        else:
            node_dir = Path(tempfile.mkdtemp(prefix="edgewatch-bench-es-"))
            node = start_node(run_dir=node_dir, heap="1g")
            url = node.url
            args.node_pid_file = node.run_dir / "node.pid"
        es = Elasticsearch(url, request_timeout=300)
        store = tmp / "store" if args.with_store else None
        settle_s = 0.0
        if args.namespace:
            ns, load_s = args.namespace, 0.0
            count = es.count(index=names.check_data_stream(ns))["count"]
        else:
            ns = f"bench{int(time.time())}"
            setup(ElasticsearchSettings(url=url, namespace=ns, spool_dir=tmp / "spool",
                                        dead_letter_dir=tmp / "dead"), out=io.StringIO())
            if store is not None:
                store.mkdir()
            count, load_s = load(es, Generator(args.docs, **scale(args.docs)), ns, store)
            print(f"  namespace {ns}; waiting for the node's merges to end", file=sys.stderr)
            settle_s = settle(es, f"{names.check_data_stream(ns)},{names.runs_index(ns)}")
        indices = f"{names.check_data_stream(ns)},{names.runs_index(ns)}"
        if args.no_request_cache:
            es.indices.put_settings(index=indices, settings={"index.requests.cache.enable": False})
        stats = es.indices.stats(index=names.check_data_stream(ns), metric="store,docs")
        size = stats["_all"]["primaries"]["store"]["size_in_bytes"]
        source = ElasticsearchSource(es, namespace=ns)
        report = None

        def run_report() -> None:
            nonlocal report
            report = build_report(source, Filters())

        # The command as a person runs it: a fresh process, text output (imports included),
        # first thing after the load has settled (``settle``).
        cli = [sys.executable, "-c", CLI, "report", "--es-url", url, "--namespace", ns,
               "--no-progress"]
        node_pid = pid_from_file(args.node_pid_file)

        def run_cli() -> tuple[float, int, dict[str, float] | None]:
            before = threads_cpu(node_pid) if node_pid else None
            t0 = time.monotonic()
            proc = subprocess.run(cli, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, check=True)
            seconds = round(time.monotonic() - t0, 2)
            node_cpu = by_kind(before, threads_cpu(node_pid)) if before is not None else None
            return seconds, int(proc.stderr.split("VMHWM ")[-1]) // 1024, node_cpu

        cli_s, cli_rss, cli_node_cpu = run_cli()
        # Again in fresh processes, the node's JIT warm now, and its request cache off.
        es.indices.put_settings(index=indices, settings={"index.requests.cache.enable": False})
        warm = [run_cli() for _ in range(2)]
        if not args.no_request_cache:
            es.indices.put_settings(index=indices, settings={"index.requests.cache.enable": None})
        # The same without Elasticsearch's shard request cache, then with it (a repeat).
        plain_search = es.search
        es.search = lambda **kw: plain_search(request_cache=False, **kw)  # type: ignore
        uncached = timed(run_report, repeat=3)
        es.search = plain_search  # type: ignore
        cached = timed(run_report, repeat=2)
        allow_times = timed(lambda: build_allowlist(source, Filters(), 0.99, "ip"))
        result = {
            "documents": count, "runs": report.overall.run_length.runs,
            "addresses": report.overall.networks.addresses, "days": report.window.days,
            "load_s": round(load_s, 1), "settle_s": settle_s, "index_bytes": size,
            "report_cli_es_s": cli_s, "report_cli_peak_rss_mib": cli_rss,
            "report_cli_node_cpu_s": cli_node_cpu,
            "report_cli_es_warm_uncached_s": [w[0] for w in warm],
            "report_cli_warm_node_cpu_s": [w[2] for w in warm],
            "report_es_uncached_s": uncached, "report_es_cached_s": cached,
            "allowlist_es_s": allow_times, "es_version": es.info()["version"]["number"],
        }
        if store is not None:
            result["report_store_s"] = timed(
                lambda: build_report(StoreSource(store), Filters()), repeat=1)
            result["store_bytes"] = sum(p.stat().st_size for p in store.iterdir())
        if args.no_request_cache:
            es.indices.put_settings(index=indices, settings={"index.requests.cache.enable": None})
        print(json.dumps(result))
        return 0
    finally:
        if node is not None:
            node.stop()
            shutil.rmtree(node.run_dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
