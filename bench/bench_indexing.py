"""Indexing throughput: the edgewatch Elasticsearch sink vs a raw ``_bulk`` of the same documents.

    .venv/bin/python bench/bench_indexing.py [--url URL] [--docs 20000] [--batch 500] [--rounds 3]

Without ``--url`` a fresh devstack node is started (and stopped) for the run. Both sides index
the same check documents, in batches of the same size, as ``create`` operations with their
deterministic ``_id`` into a fresh data stream each (namespaces ``benchraw<n>`` / ``benchsink<n>``),
so neither ever meets a duplicate. The raw side sends pre-serialised ndjson bodies with the
synchronous client, one request at a time: the cost of Elasticsearch alone. The "two in flight"
side sends the same bodies from two threads, two requests at a time: the peer for the sink, which
keeps a second request on the wire when the batch after the current one is due. The sink side is the
whole pipeline path: ``write`` (spool append + fsync), the sender reading the spool, bulk with
per-item verdicts, cursor commit. The drain side is the sink catching up on a backlog: the
documents are spooled before the clock starts (as an outage or a restart leaves them), then the
sink opens and delivers them from the spool files, with no producer on its event loop. Rounds
rotate which side goes first. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
from elasticsearch import Elasticsearch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "es"))

from docgen import check_records  # noqa: E402
from machine import cpu_model, memory_kib  # noqa: E402

from devstack.node import Node, start_node  # noqa: E402
from pipeline.commands.setup import setup  # noqa: E402
from pipeline.config import ElasticsearchSettings  # noqa: E402
from pipeline.es import names  # noqa: E402
from pipeline.sinks.elasticsearch import ElasticsearchSink  # noqa: E402
from pipeline.sinks.es_bulk import spool_entry  # noqa: E402
from pipeline.sinks.spool import opened  # noqa: E402


def settings(url: str, namespace: str, batch: int, state: Path) -> ElasticsearchSettings:
    return ElasticsearchSettings(url=url, namespace=namespace, bulk_max_docs=batch,
                                 flush_interval_s=0.05, spool_dir=state / namespace / "spool",
                                 dead_letter_dir=state / namespace / "dead-letter",
                                 request_timeout=120.0)


def raw_bulk(es: Elasticsearch, namespace: str, sources: list[tuple[str, bytes]],
             batch: int, in_flight: int = 1) -> tuple[float, float]:
    index = names.check_data_stream(namespace)
    bodies = []
    for i in range(0, len(sources), batch):
        lines = []
        for rid, source in sources[i:i + batch]:
            lines.append(orjson.dumps({"create": {"_index": index, "_id": rid}}))
            lines.append(source)
        bodies.append(b"\n".join(lines) + b"\n")
    def send(body: bytes) -> None:
        if es.bulk(operations=body)["errors"]:
            raise RuntimeError("raw bulk reported item errors")

    t0, c0 = time.perf_counter(), time.process_time()
    if in_flight == 1:
        for body in bodies:
            send(body)
    else:
        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(send, bodies))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    es.indices.refresh(index=index)
    if es.count(index=index)["count"] != len(sources):
        raise RuntimeError("raw bulk: count mismatch")
    return elapsed, cpu


async def sink_run(es: Elasticsearch, s: ElasticsearchSettings,
                   records: list) -> tuple[float, float]:
    sink = ElasticsearchSink(s)
    await sink.open()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(records), s.bulk_max_docs):
        await sink.write(records[i:i + s.bulk_max_docs])
        await asyncio.sleep(0)  # as a producer with anything to await does: the sender runs
    return await _delivered(es, sink, "sink", len(records), t0, c0)


async def drain_run(es: Elasticsearch, s: ElasticsearchSettings,
                    records: list) -> tuple[float, float]:
    """The sink delivering a spool filled before the clock starts: open to empty spool."""
    with opened(s.spool_dir) as spool:
        entries = [spool_entry(r, s.namespace)[0] for r in records]
        if spool.append(entries) != len(records):
            raise RuntimeError("drain: the spool refused records")
    sink = ElasticsearchSink(s)
    t0, c0 = time.perf_counter(), time.process_time()
    await sink.open()
    return await _delivered(es, sink, "drain", len(records), t0, c0)


async def _delivered(es: Elasticsearch, sink: ElasticsearchSink, side: str, count: int,
                     t0: float, c0: float) -> tuple[float, float]:
    """Flush until the spool is empty, stop the clocks started at ``t0`` / ``c0`` (wall,
    CPU), close, and check that every document is stored; the two durations."""
    while not sink.spool.is_empty():
        await sink.flush()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    await sink.close()
    _all_stored(es, sink, side, count)
    return elapsed, cpu


def _all_stored(es: Elasticsearch, sink: ElasticsearchSink, side: str, count: int) -> None:
    """A side's run counts only if every document was delivered and is in the index."""
    if sink.stats.delivered != count:
        raise RuntimeError(f"{side} delivered {sink.stats.delivered} of {count}")
    index = names.check_data_stream(sink.settings.namespace)
    es.indices.refresh(index=index)
    if es.count(index=index)["count"] != count:
        raise RuntimeError(f"{side}: count mismatch")


def machine_facts(es: Elasticsearch, node: Node | None) -> list[str]:
    cpu = cpu_model()
    mem = memory_kib() // 2**20
    version = es.info()["version"]["number"]
    facts = [f"{os.cpu_count()} vCPU ({cpu}), shared with the node and everything else running",
             f"{mem} GiB RAM, {platform.system()} {platform.release()}",
             f"Python {platform.python_version()}, elasticsearch-py "
             f"{__import__('elasticsearch').__versionstr__}, aiohttp "
             f"{__import__('aiohttp').__version__}",
             f"Elasticsearch {version} devstack node"
             + (", heap 1 GiB, started for this run" if node else " (given by --url)")]
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an existing cluster (default: start a devstack node)")
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5000,
                        help="documents indexed (raw) before measuring, to warm the node's JIT")
    args = parser.parse_args(argv)
    # The drain side opens a spool holding a backlog on purpose: the sink's warning about it
    # ("undelivered record(s) from an earlier run") is expected here, every round.
    logging.getLogger("pipeline.sinks.spool").setLevel(logging.ERROR)

    node_dir = None if args.url else Path(tempfile.mkdtemp(prefix="edgewatch-bench-es-"))
    node = start_node(run_dir=node_dir) if node_dir else None
    url = args.url or node.url  # type: ignore[union-attr]
    state = Path(tempfile.mkdtemp(prefix="edgewatch-bench-state-"))
    try:
        es = Elasticsearch(url, request_timeout=120)
        records = check_records(args.docs)
        sources = [(r.id, r.to_json()) for r in records]
        avg_size = statistics.mean(len(s) for _, s in sources)
        sides = ("raw", "raw2", "sink", "drain")
        rates: dict[str, list[float]] = {side: [] for side in sides}
        cpu_ms: dict[str, list[float]] = {side: [] for side in sides}
        # A fresh set of names per run, so that --url can point at a node used before.
        tag = f"{int(time.time()) % 1_000_000}"
        if args.warmup:
            warm = settings(url, f"benchwarmup{tag}", args.batch, state)
            setup(warm, out=io.StringIO())
            raw_bulk(es, warm.namespace, sources[:args.warmup], args.batch)
        for n in range(args.rounds):
            names_of = {side: settings(url, f"bench{side}{tag}x{n}", args.batch, state)
                        for side in sides}
            for s in names_of.values():
                setup(s, out=io.StringIO())
            order = sides[n % len(sides):] + sides[:n % len(sides)]
            for side in order:
                s = names_of[side]
                if side in ("raw", "raw2"):
                    elapsed, cpu = raw_bulk(es, s.namespace, sources, args.batch,
                                            in_flight=2 if side == "raw2" else 1)
                elif side == "sink":
                    elapsed, cpu = asyncio.run(sink_run(es, s, records))
                else:
                    elapsed, cpu = asyncio.run(drain_run(es, s, records))
                rates[side].append(args.docs / elapsed)
                cpu_ms[side].append(1000 * cpu / (args.docs / 1000))
                print(f"round {n + 1} {side:>5}: {args.docs / elapsed:8.0f} docs/s "
                      f"({elapsed:.2f} s, client CPU {cpu:.2f} s)", file=sys.stderr)
        ratios = [s / r for s, r in zip(rates["sink"], rates["raw"], strict=True)]
        drains = [d / r for d, r in zip(rates["drain"], rates["raw"], strict=True)]
        twos = [s / r for s, r in zip(rates["sink"], rates["raw2"], strict=True)]
        med = {side: statistics.median(v) for side, v in rates.items()}
        print(f"### Indexing: {args.docs} check documents (avg {avg_size:.0f} B of JSON), "
              f"batches of {args.batch}, {args.rounds} rounds\n")
        print("| path | docs/s (median) | per round | client CPU ms / 1000 docs (median) |")
        print("|---|---|---|---|")
        labels = {"raw": "raw `_bulk` (sync client, pre-serialised ndjson)",
                  "raw2": "two in flight: the same raw `_bulk` bodies from 2 threads",
                  "sink": "edgewatch sink (spool + fsync + bulk of the spooled bytes)",
                  "drain": "spool drain: the sink delivering a backlog spooled beforehand"}
        for side in sides:
            print(f"| {labels[side]} | {med[side]:.0f} | "
                  f"{', '.join(f'{r:.0f}' for r in rates[side])} | "
                  f"{statistics.median(cpu_ms[side]):.0f} |")
        print(f"\n**ratio sink / raw = {med['sink'] / med['raw']:.2f}** (medians; per round, "
              f"same-round pairs: {', '.join(f'{x:.2f}' for x in ratios)})\n")
        print(f"ratio drain / raw = {med['drain'] / med['raw']:.2f} (medians; per round, "
              f"same-round pairs: {', '.join(f'{x:.2f}' for x in drains)})\n")
        print(f"ratio sink / raw with two in flight = {med['sink'] / med['raw2']:.2f} (medians; "
              f"per round, same-round pairs: {', '.join(f'{x:.2f}' for x in twos)})\n")
        print("Machine: " + "; ".join(machine_facts(es, node)) + ".")
        print(f"Load average at the end: {os.getloadavg()[0]:.1f} (1 min).")
        es.close()
    finally:
        if node is not None:
            node.stop()
            shutil.rmtree(node_dir, ignore_errors=True)  # type: ignore[arg-type]
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
