"""``edgewatch load``: bulk-load a local ndjson store into Elasticsearch.

A probe that ran without a cluster (the embedded default) keeps everything in its store; this
moves it into the cluster through the same durable sink the daemon uses. Every stored line
carries the ``_id`` it has in Elasticsearch, so loading twice, or loading what a daemon already
indexed, stores nothing twice.

The store is read through ``report.store_lines``: a line that is not a usable document (corrupt,
truncated by a power loss, a wrong field type the cluster's strict mapping would refuse) is never
sent; it is skipped with one warning per file, or with ``--strict`` the load stops before sending
anything. A check ``_id`` stored twice is sent once, and of a run's snapshots only the latest
(highest ``edgewatch.run.version``, the last of equals) is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.commands._common import add_config_argument, load_or_exit
from pipeline.documents import Record, record_from_stored
from pipeline.report.progress import Progress
from pipeline.report.store_lines import Distinct, StoreLineError, StoreLines

if TYPE_CHECKING:
    from pipeline.sinks.elasticsearch import ElasticsearchSink

BATCH = 2000


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "load", help="bulk-load a local ndjson store into Elasticsearch (idempotent)",
        description="Read the check documents, events (allowlist misses), afterlife checks "
        "and run summaries of an ndjson store (the "
        "embedded default of `edgewatch run`) and index them into the configured cluster "
        "through the durable Elasticsearch sink. Ids are deterministic: nothing is stored "
        "twice. Run `edgewatch setup` first.",
        epilog="exit status: 0 everything delivered, 1 documents still pending (spooled for "
        "the next load or run) or dead-lettered, or --strict met a bad line, 2 bad "
        "configuration or no store to load",
    )
    add_config_argument(p)
    p.add_argument("--store", type=Path, help="store folder (default: the config's store.dir)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--strict", action="store_true",
                   help="an unusable store line stops the load before anything is sent "
                   "(exit 1) instead of being skipped with a warning")
    p.set_defaults(func=run)


def _files(store: Path, kind: str) -> list[Path]:
    return sorted(p for p in store.glob(f"{kind}-*.ndjson") if p.is_file())


def _records(store: Path, lines: StoreLines, distinct: Distinct) -> Iterator[Record]:
    """Every valid, distinct document of the store as a record: checks, events, afterlife
    checks, then runs."""
    for kind in ("checks", "events", "afterlife"):
        for path in _files(store, kind):
            for _, doc in lines.read(path, kind):
                if distinct.first_time(path, doc["_id"]):
                    yield record_from_stored(doc)
    latest: dict[str, dict] = {}
    for path in _files(store, "runs"):
        for _, doc in lines.read(path, "runs"):
            seen = latest.get(doc["_id"])
            if seen is None or doc["edgewatch.run.version"] >= seen["edgewatch.run.version"]:
                if seen is not None and doc["edgewatch.run.version"] == \
                        seen["edgewatch.run.version"]:
                    distinct.duplicates += 1
                latest[doc["_id"]] = doc
    for doc in latest.values():
        yield record_from_stored(doc)


async def _load(sink: ElasticsearchSink, records: Iterator[Record], progress: Progress) -> int:
    await sink.open()
    sent = 0
    try:
        batch: list[Record] = []
        for record in records:
            batch.append(record)
            if len(batch) >= BATCH:
                sent += await _send(sink, batch, progress, sent)
                batch = []
        if batch:
            sent += await _send(sink, batch, progress, sent)
    finally:
        await sink.close()
        progress.done()
    return sent


async def _send(sink: ElasticsearchSink, batch: list, progress: Progress, before: int) -> int:
    await sink.write(batch)
    await sink.flush()
    s = sink.stats
    progress.update(f"loaded {before + len(batch):,} documents  (stored {s.delivered:,}, "
                    f"already there {s.duplicates + s.stale:,}, refused {s.dead_lettered:,})")
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
    store = Path(store)
    if args.strict:  # every line checked before the first is sent
        try:
            for kind in ("checks", "events", "afterlife", "runs"):
                for path in _files(store, kind):
                    for _ in StoreLines(strict=True).read(path, kind):
                        pass
        except (StoreLineError, OSError) as exc:
            print(f"edgewatch load: {exc} (--strict: nothing sent)", file=sys.stderr)
            return 1
    from pipeline.sinks.elasticsearch import ElasticsearchSink  # here: the CLI starts without it

    lines, distinct = StoreLines(), Distinct()
    sink = ElasticsearchSink.from_config(config)
    try:
        sent = asyncio.run(_load(sink, _records(store, lines, distinct),
                                 Progress(enabled=not args.quiet)))
    except OSError as exc:
        print(f"edgewatch load: reading {store} failed: {exc}", file=sys.stderr)
        return 1
    for warning in lines.warnings():
        print(f"edgewatch load: warning: {warning}", file=sys.stderr)
    s = sink.stats
    print(f"{sent:,} documents read from {store}: {s.delivered:,} stored, "
          f"{s.duplicates + s.stale:,} already in the cluster, {s.dead_lettered:,} refused "
          f"(dead-letter folder {config.elasticsearch.dead_letter_dir}); "
          f"{lines.skipped:,} unusable lines skipped, {distinct.duplicates:,} duplicate lines "
          "sent once")
    pending = not sink.spool.is_empty()
    if pending:
        print(f"edgewatch load: the cluster did not take everything; the rest waits in the "
              f"spool {config.elasticsearch.spool_dir} and is sent by the next run or load",
              file=sys.stderr)
    return 1 if pending or s.dead_lettered else 0
