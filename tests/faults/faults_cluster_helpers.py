"""Shared pieces of the cluster and spool fault tests: settings, setup, counting what is stored.

Imported by ``test_faults_cluster_*.py`` and ``test_faults_spool_*.py`` (this folder is on
``sys.path`` the way ``tests/lab`` is). The documents are the deterministic check stream of
``tests/es/docgen.py``, written in cycle-sized batches the way the cycle writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from elasticsearch import Elasticsearch, helpers
from es.docgen import check_records, run_record  # tests/ is on sys.path (rootdir conftest)

from devstack.node import Node, find_java_home, free_port, prepare_home, start_node, stop_node
from pipeline.commands.setup import setup
from pipeline.config import ElasticsearchSettings
from pipeline.documents import Record
from pipeline.es import names
from pipeline.sinks.elasticsearch import ElasticsearchSink
from pipeline.sinks.spool import opened

__all__ = [
    "OwnNode",
    "Tally",
    "check_records",
    "cycle_batches",
    "drain",
    "hammer",
    "install",
    "run_record",
    "settings_for",
    "spool_pending",
    "tally",
    "tmpfs",
]



def run_once_into(tmp: Path, es_url: str, spool_dir: Path, namespace: str = "default"
                  ) -> subprocess.CompletedProcess[str]:
    """``edgewatch run --once`` writing to the cluster at ``es_url`` through ``spool_dir``.

    Loopback only: the one resolver is a closed loopback port and reverse DNS is off, so the
    cycle measures a timeout and delivers its documents; what the sink then meets is the test.
    """
    import sys

    config = tmp / "edgewatch.toml"
    config.write_text(f"""
[observer]
name = "probe-test"
[timeouts]
dns = "1s"
[rdns]
enabled = false
[[targets]]
name = "acme.example.test"
[[resolvers]]
name = "r1"
address = "127.0.0.1"
port = {free_port()}
[elasticsearch]
url = "{es_url}"
namespace = "{namespace}"
spool_dir = "{spool_dir}"
dead_letter_dir = "{tmp / 'dead'}"
[state]
dir = "{tmp / 'state'}"
[store]
dir = "{tmp / 'store'}"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    return subprocess.run([sys.executable, "-m", "pipeline", "run", "--once", "--config",
                           str(config)], capture_output=True, text=True, timeout=120,
                          env=env, cwd=Path(__file__).resolve().parents[2])


def settings_for(url: str, namespace: str, tmp: Path, **overrides: object
                 ) -> ElasticsearchSettings:
    values: dict[str, object] = {
        "url": url, "namespace": namespace, "spool_dir": tmp / "spool",
        "dead_letter_dir": tmp / "dead-letter", "flush_interval_s": 0.05,
        "bulk_max_docs": 100, "request_timeout": 5.0,
    }
    values.update(overrides)
    return ElasticsearchSettings(**values)  # type: ignore[arg-type]


def install(settings: ElasticsearchSettings) -> None:
    setup(settings, out=io.StringIO())


def cycle_batches(records: list[Record], per_cycle: int = 40) -> list[list[Record]]:
    """The records as the cycle hands them over: one write per cycle."""
    return [records[i:i + per_cycle] for i in range(0, len(records), per_cycle)]


async def drain(sink: ElasticsearchSink, within_s: float = 90.0) -> None:
    deadline = time.monotonic() + within_s
    while not sink.spool.is_empty() and time.monotonic() < deadline:
        await sink.flush()
        await asyncio.sleep(0.05)


def spool_pending(directory: Path) -> int:
    with opened(directory) as spool:
        return spool.pending_entries


@dataclass
class Tally:
    """What a fault cost: the figures of the reliability table."""

    expected: int
    stored: int  # distinct _ids stored
    duplicated: int  # extra copies of an _id
    lost: int  # expected, neither stored nor dead-lettered
    dead_lettered: int

    def line(self) -> str:
        return (f"expected={self.expected} stored={self.stored} duplicated={self.duplicated} "
                f"lost={self.lost} dead_lettered={self.dead_lettered}")


def tally(es: Elasticsearch, namespace: str, records: list[Record],
          dead_letter_dir: Path, sample: int = 25) -> Tally:
    """Count by ``_id`` what reached the data stream; compare the content of a sample."""
    index = names.check_data_stream(namespace)
    es.indices.refresh(index=index)
    hits = list(helpers.scan(es, index=index, query={"query": {"match_all": {}}}, size=1000))
    counts = Counter(h["_id"] for h in hits)
    dead = set()
    for path in dead_letter_dir.glob("dead-letter-*.ndjson"):
        dead |= {orjson.loads(line)["_id"] for line in path.read_bytes().splitlines()}
    expected = {r.id for r in records}
    by_id = {h["_id"]: h["_source"] for h in hits}
    step = max(1, len(records) // sample)
    for r in records[::step]:  # the stored content is the content written
        if r.id in by_id:
            assert by_id[r.id] == r.doc, r.id
    return Tally(expected=len(expected), stored=len(counts & Counter(expected)),
                 duplicated=sum(c - 1 for c in counts.values()),
                 lost=len(expected - set(counts) - dead), dead_lettered=len(dead & expected))


@contextlib.contextmanager
def tmpfs(directory: Path, size: str = "256k") -> Iterator[Path]:
    """A tiny file system mounted at ``directory`` (root only), unmounted afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                   check=True, capture_output=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False, capture_output=True)


class OwnNode:
    """A devstack node of the test's own, on its own port, that can be killed and restarted.

    Its write thread pool is one thread with a queue of one, so concurrent bulk requests make
    the real node answer 429 ``es_rejected_execution_exception`` (``hammer``), as an overloaded
    cluster does; a single client such as the sink alone is not rejected.
    """

    def __init__(self) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix="edgewatch-faults-"))  # world-traversable
        self.port = free_port()
        home = prepare_home(find_java_home())
        shutil.copytree(home / "config", self.run_dir / "config")
        with open(self.run_dir / "config" / "elasticsearch.yml", "a") as f:
            f.write("\nthread_pool.write.size: 1\nthread_pool.write.queue_size: 1\n")
        self.node: Node | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # The kernel's parent-death signal follows the starting *thread*: only from the main
        # thread (a restart from asyncio.to_thread would die with its worker thread).
        main = threading.current_thread() is threading.main_thread()
        self.node = start_node(run_dir=self.run_dir, port=self.port, heap="512m",
                               die_with_parent=main)
        with Elasticsearch(self.url, request_timeout=60) as es:
            es.cluster.health(wait_for_status="yellow", timeout="60s")

    def kill9(self) -> None:
        """SIGKILL the node's whole process group (launcher and JVM): no shutdown at all."""
        pid = int((self.run_dir / "launcher.pid").read_text())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        stop_node(self.run_dir)
        shutil.rmtree(self.run_dir, ignore_errors=True)


@contextlib.contextmanager
def hammer(url: str, threads: int = 4) -> Iterator[Counter]:
    """Concurrent bulk requests into an unrelated index, to saturate the write thread pool.

    Yields the per-item status counts seen by the hammer (429s prove the node was rejecting).
    """
    stop = threading.Event()
    seen: Counter = Counter()
    ops = [x for i in range(200) for x in ({"index": {"_index": "hammer"}},
                                           {"n": i, "pad": "x" * 500})]

    def loop() -> None:
        with Elasticsearch(url, request_timeout=30) as client:
            while not stop.is_set():
                try:
                    body = client.options(ignore_status=(429, 503)).bulk(operations=ops).body
                except Exception:  # the hammer is not under test
                    continue
                for item in body.get("items", []) if isinstance(body, dict) else []:
                    seen[item["index"]["status"]] += 1

    with Elasticsearch(url, request_timeout=30) as admin:  # no replica: health stays green
        admin.indices.create(index="hammer", settings={"number_of_replicas": 0})
        workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
        for w in workers:
            w.start()
        try:
            yield seen
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=60)
            admin.options(ignore_status=404).indices.delete(index="hammer")
