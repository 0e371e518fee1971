"""The run summaries as the report reads them from Elasticsearch: grouped, never one per run.

A mixin of ``ElasticsearchSource`` (kept apart so that each module stays one job): the grouped
reads of ``run_stats`` as composite aggregations over the runs index, plus ``run_rows`` (one
row per run) for readers that want the runs themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.report.filters import Filters
from pipeline.report.progress import Progress
from pipeline.report.rows import RunAddressRow, RunLengthRow, RunRow
from pipeline.report.run_stats import half_bucket_length

# The page of the reads keyed by target (``report.shared_reads``): their groups are the
# all-targets groups times the targets, and each extra page is one more pass over the index.
# Below the cluster's ``search.max_buckets`` (65,536 by default); a cluster set lower refuses a
# composite page above its limit outright, and the pages then shrink to it (``_bucket_limit``).
KEYED_PAGE = 50_000


def terms(field: str, missing: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"field": field}
    if missing:
        body["missing_bucket"] = True
    return {"terms": body}


def target_source(by_target: bool) -> list[dict[str, Any]]:
    """The composite source that keys a row by target, when asked for."""
    return [{"target": terms("dns.question.name", True)}] if by_target else []


_terms = terms


class RunQueries:
    """Needs ``runs_index``, ``page_size``, ``progress``, ``_runs_query`` and ``_composite``
    (``ElasticsearchSource`` has them)."""

    runs_index: str
    page_size: int
    progress: Progress

    def _runs_query(self, filters: Filters, plausible: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    def _composite(self, index: str, query: dict[str, Any], sources: list[dict[str, Any]],
                   label: str, aggs: dict[str, Any] | None = None,
                   page_size: int | None = None) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def run_rows(self, filters: Filters) -> Iterator[RunRow]:
        sources = [
            {"run": _terms("edgewatch.run.id")},
            {"resolver": _terms("edgewatch.resolver.name")},
            {"ip": _terms("destination.ip")},
            {"open": _terms("edgewatch.run.open", True)},
            {"duration": _terms("edgewatch.run.duration.s", True)},
            {"observed": _terms("edgewatch.run.observed.s", True)},
        ]
        for b in self._composite(self.runs_index, self._runs_query(filters), sources, "runs"):
            k = b["key"]
            yield RunRow(run_id=k["run"], resolver=k["resolver"], ip=k["ip"],
                         open=bool(k["open"]), duration_s=float(k["duration"] or 0),
                         observed_s=float(k["observed"] or 0))

    def run_gaps(self, filters: Filters, limit: int) -> list[float]:
        """One composite keyed by run id (smallest first), stopped after ``limit`` runs."""
        sources = [
            {"run": _terms("edgewatch.run.id")},
            {"duration": _terms("edgewatch.run.duration.s", True)},
            {"observed": _terms("edgewatch.run.observed.s", True)},
        ]
        query = self._runs_query(filters)
        query["bool"]["filter"].append({"term": {"edgewatch.run.open": False}})
        gaps: list[float] = []
        for b in self._composite(self.runs_index, query, sources, "run gaps",
                                 page_size=min(self.page_size, limit)):
            k = b["key"]
            gaps.append(float(k["duration"] or 0) - float(k["observed"] or 0))
            if len(gaps) >= limit:
                break
        self.progress.done()
        return gaps

    def run_length_rows(self, filters: Filters, interval_s: float) -> Iterator[RunLengthRow]:
        """Runs counted by resolver, open flag and length in half-interval buckets, merged in
        pairs to the nearest multiple of the interval (``run_stats.half_bucket_length``)."""
        return (row for _, row in self._run_lengths(filters, interval_s, by_target=False))

    def run_length_rows_by_target(self, filters: Filters, interval_s: float
                                  ) -> Iterator[tuple[str | None, RunLengthRow]]:
        """``run_length_rows`` with the target of each, for every target in one pass
        (``report.shared_reads``)."""
        return self._run_lengths(filters, interval_s, by_target=True)

    def _run_lengths(self, filters: Filters, interval_s: float, by_target: bool
                     ) -> Iterator[tuple[str | None, RunLengthRow]]:
        sources = [
            *target_source(by_target),
            {"resolver": _terms("edgewatch.resolver.name")},
            {"open": _terms("edgewatch.run.open", True)},
            {"length": {"histogram": {"field": "edgewatch.run.duration.s",
                                      "interval": interval_s / 2, "missing_bucket": True}}},
        ]
        merged: dict[tuple[str | None, str, bool, float], int] = {}
        for b in self._composite(self.runs_index, self._runs_query(filters), sources,
                                 "run lengths", page_size=KEYED_PAGE if by_target else None):
            k = b["key"]
            key = (k.get("target"), k["resolver"], bool(k["open"]),
                   half_bucket_length(float(k["length"] or 0), interval_s))
            merged[key] = merged.get(key, 0) + b["doc_count"]
        for (target, resolver, is_open, length), n in merged.items():
            yield target, RunLengthRow(resolver=resolver, open=is_open, length_s=length, runs=n)

    def run_address_rows(self, filters: Filters) -> Iterator[RunAddressRow]:
        return (row for _, row in self._run_addresses(filters, by_target=False))

    def target_run_address_rows(self, filters: Filters
                                ) -> Iterator[tuple[str | None, RunAddressRow]]:
        """``run_address_rows`` with the target of each, for every target in one pass
        (``report.shared_reads``)."""
        return self._run_addresses(filters, by_target=True)

    def _run_addresses(self, filters: Filters, by_target: bool
                       ) -> Iterator[tuple[str | None, RunAddressRow]]:
        sources = [
            *target_source(by_target),
            {"resolver": _terms("edgewatch.resolver.name")},
            {"ip": _terms("destination.ip")},
        ]
        total = {"presence": {"sum": {"field": "edgewatch.run.duration.s"}}}
        for b in self._composite(self.runs_index, self._runs_query(filters), sources,
                                 "runs by address", total,
                                 page_size=KEYED_PAGE if by_target else None):
            k = b["key"]
            yield k.get("target"), RunAddressRow(
                resolver=k["resolver"], ip=k["ip"], runs=b["doc_count"],
                duration_s=float(b["presence"]["value"] or 0))

