"""``edgewatch load``: bulk-load a local ndjson store into Elasticsearch.

A probe that ran without a cluster (the embedded default) keeps everything in its store; this
moves it into the cluster through the same durable sink the daemon uses. Every stored line
carries the ``_id`` it has in Elasticsearch, so loading twice, or loading what a daemon already
indexed, stores nothing twice.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.commands._common import add_config_argument, load_or_exit
from pipeline.documents import record_from_stored
from pipeline.sinks.ndjson import read_store

if TYPE_CHECKING:
    from pipeline.sinks.elasticsearch import ElasticsearchSink

BATCH = 2000


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "load", help="bulk-load a local ndjson store into Elasticsearch (idempotent)",
        description="Read the check documents and run summaries of an ndjson store (the "
        "embedded default of `edgewatch run`) and index them into the configured cluster "
        "through the durable Elasticsearch sink. Ids are deterministic: nothing is stored "
        "twice. Run `edgewatch setup` first.",
    )
    add_config_argument(p)
    p.add_argument("--store", type=Path, help="store folder (default: the config's store.dir)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


async def _load(sink: ElasticsearchSink, store: Path, quiet: bool) -> int:
    await sink.open()
    sent = 0
    try:
        for kind in ("checks", "runs"):
            batch = []
            for line in read_store(store, kind):
                batch.append(record_from_stored(line))
                if len(batch) >= BATCH:
                    sent += await _send(sink, batch, quiet, sent)
                    batch = []
            if batch:
                sent += await _send(sink, batch, quiet, sent)
    finally:
        await sink.close()
    return sent


async def _send(sink: ElasticsearchSink, batch: list, quiet: bool, before: int) -> int:
    await sink.write(batch)
    await sink.flush()
    if not quiet:
        s = sink.stats
        sys.stderr.write(f"\rloaded {before + len(batch):,} documents  (stored {s.delivered:,}, "
                         f"already there {s.duplicates + s.stale:,}, refused "
                         f"{s.dead_lettered:,})   ")
        sys.stderr.flush()
    return len(batch)


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    if config.elasticsearch is None:
        print("edgewatch load: no cluster configured: set [elasticsearch] url or ES_URL",
              file=sys.stderr)
        return 2
    store = args.store or config.store_dir
    if not list(Path(store).glob("*.ndjson")):
        print(f"edgewatch load: {store} holds no checks-*.ndjson / runs-*.ndjson files",
              file=sys.stderr)
        return 2
    from pipeline.sinks.elasticsearch import ElasticsearchSink  # here: the CLI starts without it

    sink = ElasticsearchSink.from_config(config)
    sent = asyncio.run(_load(sink, Path(store), args.quiet))
    s = sink.stats
    if not args.quiet:
        sys.stderr.write("\n")
    print(f"{sent:,} documents read from {store}: {s.delivered:,} stored, "
          f"{s.duplicates + s.stale:,} already in the cluster, {s.dead_lettered:,} refused "
          f"(dead-letter folder {config.elasticsearch.dead_letter_dir})")
    pending = not sink.spool.is_empty()
    if pending:
        print(f"edgewatch load: the cluster did not take everything; the rest waits in the "
              f"spool {config.elasticsearch.spool_dir} and is sent by the next run or load",
              file=sys.stderr)
    return 1 if pending or s.dead_lettered else 0
