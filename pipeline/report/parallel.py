"""Independent reads of one report, at once where the source can serve them so.

A cluster runs each search of a one-shard index on one core: the report's five check views and
its run views, read one after the other, leave the node's other cores idle while the wall clock
adds them up. A source that says it serves ``parallel_reads`` > 1 (``ElasticsearchSource``)
gets its reads issued from that many threads, each materialised as a list (grouped rows: small);
the ndjson store reads in this process and says nothing, so its reads stay in order. Results are
handed back by name, so the fold that follows is the same whichever read finished first.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def read_all(source: Any, jobs: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Every job's result by name; concurrently when ``source.parallel_reads`` > 1."""
    workers = min(int(getattr(source, "parallel_reads", 1) or 1), len(jobs))
    if workers <= 1:
        return {name: job() for name, job in jobs.items()}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report-read") as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}
