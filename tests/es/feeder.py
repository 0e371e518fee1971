"""A pipeline process for the kill -9 test: feeds the deterministic check stream into the sink.

    python tests/es/feeder.py URL NAMESPACE STATE_DIR START TOTAL

Writes records START..TOTAL-1 in chunks, printing ``ACK <n>`` after each acknowledged write (n =
records acknowledged so far) and ``BULK`` whenever the sink starts a bulk request, so the test
can kill it in the middle of one. Ends with ``DONE`` once everything is delivered.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from docgen import check_records

from pipeline.config import ElasticsearchSettings
from pipeline.sinks.elasticsearch import ElasticsearchSink

CHUNK = 20


class BulkMarker(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("bulk: sending"):
            print("BULK", flush=True)


async def main(url: str, namespace: str, state: Path, start: int, total: int) -> None:
    settings = ElasticsearchSettings(url=url, namespace=namespace, spool_dir=state / "spool",
                                     dead_letter_dir=state / "dead-letter",
                                     flush_interval_s=0.05, bulk_max_docs=100)
    log = logging.getLogger("pipeline.sinks.elasticsearch")
    log.setLevel(logging.DEBUG)
    log.addHandler(BulkMarker())
    records = check_records(total, first=start)
    sink = ElasticsearchSink(settings, initial_backoff_s=0.05, max_backoff_s=0.5)
    await sink.open()
    for i in range(0, len(records), CHUNK):
        await sink.write(records[i:i + CHUNK])
        print(f"ACK {start + min(i + CHUNK, len(records))}", flush=True)
        await asyncio.sleep(0.02)  # a paced stream, so bulks and writes interleave
    while not sink.spool.is_empty():
        await sink.flush()
    await sink.close()
    print(f"DONE {sink.stats}", flush=True)


if __name__ == "__main__":
    url, namespace, state, start, total = sys.argv[1:6]
    asyncio.run(main(url, namespace, Path(state), int(start), int(total)))
