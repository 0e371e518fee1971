"""Elasticsearch as an evidence source: composite aggregations, paged.

Every figure is built from composite aggregations paged with ``after_key``, so millions of check
documents never leave the cluster; what crosses the wire is one bucket per distinct
(day, resolver, address) and the like. Only aggregations that every 8.x/9.x cluster has are used
(composite with terms / histogram / date_histogram sources, filter, min, max): no scripts,
runtime fields, ``multi_terms`` or ``top_metrics``, which a minimal node lacks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline.es import names
from pipeline.report.answers import ANSWER_FIELDS, AnswerRow, fold_answers
from pipeline.report.es_runs import KEYED_PAGE, RunQueries, target_source, terms
from pipeline.report.filters import Filters
from pipeline.report.progress import Progress
from pipeline.report.rows import (
    DAY_S,
    TIMING_FIELDS,
    AddressRow,
    AfterlifeRow,
    NetworkRow,
    ObserverRow,
    ObserverRunRow,
    OutcomeRow,
    Span,
    TargetAddressRow,
    TimingRow,
)

if TYPE_CHECKING:  # the client is imported where a cluster is actually read
    from elasticsearch import Elasticsearch

DAY_MS = DAY_S * 1000
NAMES_MAX = 10_000  # values one terms aggregation returns before the composite takes over


def _bucket_limit(exc: Exception) -> int | None:
    """The cluster's ``search.max_buckets`` when ``exc`` is its refusal of a page above it:
    a ``too_many_buckets_exception`` among the root causes (the shard refused the page size)
    or down the ``caused_by`` chain (the reduce counted too many buckets)."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    pending = [error]
    while pending:
        cause = pending.pop()
        if not isinstance(cause, dict):
            continue
        if cause.get("type") == "too_many_buckets_exception":
            limit = cause.get("max_buckets")
            return limit if isinstance(limit, int) and limit > 0 else None
        pending += [cause.get("caused_by"), *(cause.get("root_cause") or ())]
    return None


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _range(lower: datetime | None, upper: datetime | None) -> dict[str, str]:
    rng: dict[str, str] = {}
    if lower is not None:
        rng["gte"] = _iso(lower)
    if upper is not None:
        rng["lt"] = _iso(upper)
    return rng


_terms = terms


def _flag(value: Any) -> bool | None:
    """A boolean composite key (``true``/``false``, 1/0 or its string form) as a bool."""
    if value is None:
        return None
    return value in (True, 1, "true")


def _address_row(group: tuple[str, int, str], origin_ms: int, documents: int,
                 ok: int) -> AddressRow:
    resolver, day_ms, ip = group
    return AddressRow(day=(day_ms - origin_ms) // DAY_MS, resolver=resolver, ip=ip,
                      documents=documents, ok=ok)


class ElasticsearchSource(RunQueries):
    """Reads the check data stream and the runs index of one namespace (or all: ``*``)."""

    # Independent reads at once (``report.parallel``): a one-shard index answers each search
    # on one core, so a report's views, read in turn, left the node's other cores idle.
    parallel_reads = 3

    def __init__(
        self,
        client: Elasticsearch,
        namespace: str = "*",
        checks_index: str | None = None,
        runs_index: str | None = None,
        page_size: int = 10_000,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.checks_index = checks_index or names.check_data_stream(namespace)
        self.runs_index = runs_index or names.runs_index(namespace)
        self.afterlife_index = names.afterlife_data_stream(namespace)
        self.page_size = page_size
        self.max_buckets: int | None = None  # the cluster's limit, once a page met it
        self.progress = progress or Progress(enabled=False)
        self.description = f"elasticsearch {self.checks_index} + {self.runs_index}"
        # The cluster parsed every document against the strict mapping when it was indexed
        # and keeps one per _id: nothing to skip, nothing duplicated.
        self.skipped_lines = 0
        self.duplicate_lines = 0

    def warnings(self) -> list[str]:
        """One line when the cluster still holds schema-1 documents, which no query here sees.

        Schema 1 named the resolver, run and prefix fields differently (docs/DOCUMENTS.md), so
        its documents fall out of every aggregation; the figures are then schema 2's alone.
        """
        from elasticsearch import ApiError, TransportError

        old = {"term": {"edgewatch.schema": 1}}
        try:
            counts = [(index, self._count(index, old))
                      for index in (self.checks_index, self.runs_index)]
        except (ApiError, TransportError):  # the figures were read; this note is best effort
            return []
        found = [f"{n:,} in {index}" for index, n in counts if n]
        if not found:
            return []
        return [f"{' and '.join(found)} are schema-1 documents (written by an older edgewatch) "
                "and are not counted here; load the local store again (`edgewatch load` "
                "converts it) into a fresh namespace, or delete them"]

    # -- queries -------------------------------------------------------------------------

    @staticmethod
    def _name_filters(filters: Filters) -> list[dict[str, Any]]:
        out = []
        for field, values in (("dns.question.name", filters.targets),
                              ("observer.name", filters.observers),
                              ("edgewatch.resolver.name", filters.resolvers),
                              ("dns.question.type", filters.record_types)):
            if values:
                out.append({"terms": {field: list(values)}})
        return out

    def _checks_query(self, filters: Filters, *extra: dict[str, Any]) -> dict[str, Any]:
        clauses = self._name_filters(filters) + list(extra)
        rng = _range(filters.lower, filters.upper)
        if rng:
            clauses.append({"range": {"@timestamp": rng}})
        return {"bool": {"filter": clauses}}

    def _runs_query(self, filters: Filters, plausible: bool = True) -> dict[str, Any]:
        clauses = self._name_filters(filters)
        if filters.end is not None:
            clauses.append({"range": {"edgewatch.run.start": {"lt": _iso(filters.end)}}})
        if filters.start is not None:
            clauses.append({"range": {"edgewatch.run.last_seen": {"gte": _iso(filters.start)}}})
        if plausible:
            clauses += self._runs_plausible(filters)
        return {"bool": {"filter": clauses}}

    @staticmethod
    def _runs_plausible(filters: Filters) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if filters.not_before is not None:
            out.append({"range": {"edgewatch.run.start": {"gte": _iso(filters.not_before)}}})
        if filters.not_after is not None:
            out.append({"range": {"edgewatch.run.last_seen": {"lt": _iso(filters.not_after)}}})
        return out

    def _composite(self, index: str, query: dict[str, Any], sources: list[dict[str, Any]],
                   label: str, aggs: dict[str, Any] | None = None,
                   page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield every bucket of a composite aggregation, one page at a time."""
        after: dict[str, Any] | None = None
        seen = 0
        size = page_size or self.page_size
        if self.max_buckets is not None:
            size = min(size, self.max_buckets)
        while True:
            composite: dict[str, Any] = {"size": size, "sources": sources}
            if after is not None:
                composite["after"] = after
            body: dict[str, Any] = {"composite": composite}
            if aggs:
                body["aggs"] = aggs
            try:
                resp = self.client.search(
                    index=index, size=0, query=query, aggs={"g": body},
                    track_total_hits=False, ignore_unavailable=True, allow_no_indices=True,
                )
            except Exception as exc:
                limit = _bucket_limit(exc)
                if limit is None or limit >= size:
                    raise
                self.max_buckets = size = limit  # more pages: each one more pass
                continue
            agg = (resp.get("aggregations") or {}).get("g")
            if not agg:
                break
            buckets = agg["buckets"]
            yield from buckets
            seen += len(buckets)
            self.progress.update(f"{label}: {seen:,} groups")
            after = agg.get("after_key")
            if not buckets or after is None or len(buckets) < size:
                break
        self.progress.done()

    def _by_resolver(self, filters: Filters, extra: list[dict[str, Any]],
                     sources: list[dict[str, Any]], label: str,
                     aggs: dict[str, Any] | None = None, page_size: int | None = None
                     ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(resolver, bucket) of a composite over the selected checks, one resolver at a time.

        Every page of a composite visits every matching check again (only an index
        sorted by the sources could stop early), so a grouping with B buckets over N checks
        costs ⌈B / page⌉ · N: the day × resolver × address groups of 10M checks took 12
        pages and 23.6 s against 0.74 s for 1M (docs/BENCHMARKS.md). A term filter per
        resolver makes the node visit that resolver's documents only, and each part fits
        one page, so the cost is one pass whatever the number of groups. The resolver is
        then known from the filter: ``sources`` leave it out, one lookup less per check."""
        names = self._names(filters, "edgewatch.resolver.name", label)
        for i, name in enumerate(names, 1):
            query = self._checks_query(filters, *extra,
                                       {"term": {"edgewatch.resolver.name": name}})
            for bucket in self._composite(self.checks_index, query, sources,
                                          f"{label}, resolver {i} of {len(names)}", aggs,
                                          page_size):
                yield name, bucket

    def check_groups(self, filters: Filters, extra: list[dict[str, Any]],
                     sources: list[dict[str, Any]], label: str,
                     aggs: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every bucket of a composite aggregation over the selected checks that also match
        ``extra``: for readers that need groups the report has no row for (the living list)."""
        return self._composite(self.checks_index, self._checks_query(filters, *extra), sources,
                               label, aggs)

    # -- Source interface ----------------------------------------------------------------

    def span(self, filters: Filters) -> Span | None:
        """First and last ``@timestamp`` of the selection: the one hit of a size-1 sort in
        each order. A min/max aggregation over the same query reads the doc value of every
        matching check (10M checks: 115–200 ms, 0.45–0.6 s on a node just started); the sort
        skips the blocks of the field's points that cannot hold a better hit (5–60 ms), and
        every view of the report waits for the span (the days and their origin)."""
        ends: list[int] = []
        for order in ("asc", "desc"):
            resp = self.client.search(
                index=self.checks_index, size=1, query=self._checks_query(filters),
                sort=[{"@timestamp": {"order": order, "unmapped_type": "date"}}], source=False,
                track_total_hits=False, ignore_unavailable=True, allow_no_indices=True,
            )
            hits = resp["hits"]["hits"]
            if not hits:
                return None
            ends.append(int(hits[0]["sort"][0]))
        return Span(first=datetime.fromtimestamp(ends[0] / 1000, UTC),
                    last=datetime.fromtimestamp(ends[1] / 1000, UTC))

    def address_rows(self, filters: Filters, origin: datetime) -> Iterator[AddressRow]:
        """One row per (day, resolver, address). The outcome is a source of the composite,
        not a ``filter`` sub-aggregation counting the successes: the sub-aggregation, run
        for every check, cost the node as much as the grouping itself (10M checks, 20
        resolvers: 5.9–6.3 s against 2.9–3.3 s, docs/BENCHMARKS.md). A group's outcome
        buckets come one after the other, pages included (composite order), and are summed
        here."""
        return (row for _, row in self._address_rows(filters, origin, by_target=False))

    def day_address_rows_by_target(self, filters: Filters, origin: datetime
                                   ) -> Iterator[tuple[str | None, AddressRow]]:
        """``address_rows`` with the target of each, for every target in one pass
        (``report.shared_reads``): one row per (day, resolver, target, address)."""
        return self._address_rows(filters, origin, by_target=True)

    def _address_rows(self, filters: Filters, origin: datetime, by_target: bool
                      ) -> Iterator[tuple[str | None, AddressRow]]:
        origin_ms = round(origin.timestamp() * 1000)
        sources = [
            {"day": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1d",
                                        "offset": f"+{origin_ms % DAY_MS}ms"}}},
            *target_source(by_target),
            {"ip": _terms("destination.ip")},
            {"outcome": _terms("event.outcome", True)},
        ]
        group: tuple[str, int, str] | None = None
        target: str | None = None
        documents = ok = 0
        for resolver, b in self._by_resolver(filters, [{"exists": {"field": "destination.ip"}}],
                                             sources, "addresses by day",
                                             page_size=KEYED_PAGE if by_target else None):
            k = b["key"]
            key = (resolver, int(k["day"]), k["ip"])
            if key != group or k.get("target") != target:
                if group is not None:
                    yield target, _address_row(group, origin_ms, documents, ok)
                group, target, documents, ok = key, k.get("target"), 0, 0
            documents += b["doc_count"]
            if k["outcome"] == "success":
                ok += b["doc_count"]
        if group is not None:
            yield target, _address_row(group, origin_ms, documents, ok)

    def target_address_rows(self, filters: Filters, origin: datetime
                            ) -> Iterator[TargetAddressRow]:
        origin_ms = round(origin.timestamp() * 1000)
        sources = [
            {"day": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1d",
                                        "offset": f"+{origin_ms % DAY_MS}ms"}}},
            {"target": _terms("dns.question.name")},
            {"ip": _terms("destination.ip")},
        ]
        first = {"first": {"min": {"field": "@timestamp"}}}
        for resolver, b in self._by_resolver(filters, [{"exists": {"field": "destination.ip"}},
                                                       {"term": {"event.outcome": "success"}}],
                                             sources, "addresses by target", first):
            k = b["key"]
            yield TargetAddressRow(
                day=(int(k["day"]) - origin_ms) // DAY_MS, target=k["target"],
                resolver=resolver, ip=k["ip"], ok=b["doc_count"],
                first=datetime.fromtimestamp(b["first"]["value"] / 1000, UTC))

    def network_rows(self, filters: Filters) -> Iterator[NetworkRow]:
        return (row for _, row in self._network_rows(filters, by_target=False))

    def outcome_rows(self, filters: Filters) -> Iterator[OutcomeRow]:
        return (row for _, row in self._outcome_rows(filters, by_target=False))

    # The same rows with the target of each (None: a check without one), read in one pass for
    # every target of the selection (``report.shared_reads``): neither counts by day, so a
    # per-target report's rows are the all-targets rows of its target, exactly.

    def target_network_rows(self, filters: Filters) -> Iterator[tuple[str | None, NetworkRow]]:
        return self._network_rows(filters, by_target=True)

    def target_outcome_rows(self, filters: Filters) -> Iterator[tuple[str | None, OutcomeRow]]:
        return self._outcome_rows(filters, by_target=True)

    def _network_rows(self, filters: Filters, by_target: bool
                      ) -> Iterator[tuple[str | None, NetworkRow]]:
        sources = [
            *target_source(by_target),
            {"ip": _terms("destination.ip")},
            {"prefix24": _terms("edgewatch.destination.prefix24", True)},
            {"prefix": _terms("edgewatch.destination.prefix", True)},
            {"asn": _terms("destination.as.number", True)},
            {"domain": _terms("destination.domain", True)},
        ]
        query = self._checks_query(filters, {"exists": {"field": "destination.ip"}})
        for b in self._composite(self.checks_index, query, sources, "address networks"):
            k = b["key"]
            yield k.get("target"), NetworkRow(
                ip=k["ip"], prefix24=k["prefix24"], prefix=k["prefix"],
                asn=None if k["asn"] is None else int(k["asn"]), domain=k["domain"],
                documents=b["doc_count"])

    def _outcome_rows(self, filters: Filters, by_target: bool
                      ) -> Iterator[tuple[str | None, OutcomeRow]]:
        sources = [
            *target_source(by_target),
            {"resolver": _terms("edgewatch.resolver.name")},
            {"outcome": _terms("event.outcome", True)},
            {"error": _terms("error.type", True)},
            {"answers": _terms("edgewatch.dns.answer_count", True)},
        ]
        for b in self._composite(self.checks_index, self._checks_query(filters), sources,
                                 "outcomes"):
            k = b["key"]
            yield k.get("target"), OutcomeRow(
                resolver=k["resolver"], outcome=k["outcome"], error_type=k["error"],
                answer_count=None if k["answers"] is None else int(k["answers"]),
                documents=b["doc_count"],
            )

    def timing_rows(self, filters: Filters, bucket_us: int) -> Iterator[TimingRow]:
        return (row for _, row in self._timing_rows(filters, bucket_us, by_target=False))

    def timing_rows_by_target(self, filters: Filters, bucket_us: int
                              ) -> Iterator[tuple[str | None, TimingRow]]:
        """``timing_rows`` with the target of each, for every target in one pass
        (``report.shared_reads``). With the target as a source the groups outgrow the usual
        page (30,163 at 10M checks, four pages: each page is one more pass over the checks),
        hence the larger page."""
        return self._timing_rows(filters, bucket_us, by_target=True)

    def _timing_rows(self, filters: Filters, bucket_us: int, by_target: bool
                     ) -> Iterator[tuple[str | None, TimingRow]]:
        for field in TIMING_FIELDS:
            sources = [
                *target_source(by_target),
                {"resolver": _terms("edgewatch.resolver.name")},
                {"bucket": {"histogram": {"field": field, "interval": bucket_us}}},
            ]
            query = self._checks_query(filters, {"exists": {"field": field}})
            for b in self._composite(self.checks_index, query, sources, f"timings {field}",
                                     page_size=KEYED_PAGE if by_target else None):
                yield b["key"].get("target"), TimingRow(
                    resolver=b["key"]["resolver"], field=field, bucket_us=int(b["key"]["bucket"]),
                    documents=b["doc_count"])

    def observer_rows(self, filters: Filters) -> Iterator[ObserverRow]:
        sources = [{"observer": _terms("observer.name")}, {"ip": _terms("destination.ip", True)},
                   {"outcome": _terms("event.outcome", True)},
                   {"error": _terms("error.type", True)},
                   {"answers": _terms("edgewatch.dns.answer_count", True)}]
        for b in self._composite(self.checks_index, self._checks_query(filters), sources,
                                 "observers"):
            k = b["key"]
            yield ObserverRow(observer=k["observer"], ip=k["ip"], outcome=k["outcome"],
                              error_type=k["error"], documents=b["doc_count"],
                              answer_count=None if k["answers"] is None else int(k["answers"]))

    def target_names(self, filters: Filters) -> list[str]:
        """The targets the selected checks name, sorted."""
        return self._names(filters, "dns.question.name", "targets")

    def observer_names(self, filters: Filters) -> list[str]:
        """The observers of the selected checks, sorted."""
        return self._names(filters, "observer.name", "observers")

    def _names(self, filters: Filters, field: str, label: str) -> list[str]:
        """Every value of a low-cardinality keyword: a ``terms`` aggregation, which the node
        counts from its postings (tens of milliseconds over millions of checks, against a
        whole pass for a composite); the composite only when terms left values out."""
        resp = self.client.search(
            index=self.checks_index, size=0, query=self._checks_query(filters),
            aggs={"g": {"terms": {"field": field, "size": NAMES_MAX}}},
            track_total_hits=False, ignore_unavailable=True, allow_no_indices=True)
        agg = (resp.get("aggregations") or {}).get("g")
        if not agg:
            return []
        if agg.get("sum_other_doc_count", 0) == 0:
            return sorted(b["key"] for b in agg["buckets"])
        return sorted(b["key"]["v"] for b in self._composite(
            self.checks_index, self._checks_query(filters), [{"v": _terms(field)}], label))

    def observer_run_rows(self, filters: Filters) -> Iterator[ObserverRunRow]:
        sources = [{"observer": _terms("observer.name")},
                   {"open": _terms("edgewatch.run.open", True)}]
        for b in self._composite(self.runs_index, self._runs_query(filters), sources,
                                 "observer runs"):
            yield ObserverRunRow(observer=b["key"]["observer"], open=bool(_flag(b["key"]["open"])),
                                 runs=b["doc_count"])

    def answer_rows(self, filters: Filters) -> list[AnswerRow]:
        """One row per query (``pipeline.report.answers``), in time order, for the replay.

        A replay needs each answer's addresses in order, which no aggregation returns, so the
        check documents are paged through (a point in time, ``search_after``) with only the
        DNS fields of ``ANSWER_FIELDS`` in each hit. In index order (``_shard_doc``), not time
        order: ``fold_answers`` groups by query whatever the order and sorts its rows, and a
        sort on ``@timestamp`` made every page cost the cluster 5–6× more (measured on 1M
        checks: 150,000 documents in 11–16 s against 1.8–2.7 s)."""
        return fold_answers(self._answer_docs(filters))

    def _answer_docs(self, filters: Filters) -> Iterator[tuple[datetime, dict[str, Any]]]:
        from elasticsearch import NotFoundError

        try:
            pit = self.client.open_point_in_time(index=self.checks_index, keep_alive="2m",
                                                 ignore_unavailable=True)["id"]
        except NotFoundError:  # no such index: nothing stored yet
            return
        after: list[Any] | None = None
        seen = 0
        try:
            while True:
                extra: dict[str, Any] = {"search_after": after} if after is not None else {}
                resp = self.client.search(
                    pit={"id": pit, "keep_alive": "2m"}, size=self.page_size,
                    query=self._checks_query(filters), source_includes=list(ANSWER_FIELDS),
                    sort=[{"_shard_doc": "asc"}],
                    track_total_hits=False, **extra)
                pit = resp.get("pit_id", pit)
                hits = resp["hits"]["hits"]
                for h in hits:
                    doc = h["_source"]
                    yield datetime.fromisoformat(
                        doc["@timestamp"].replace("Z", "+00:00")).astimezone(UTC), doc
                seen += len(hits)
                self.progress.update(f"answers: {seen:,} documents")
                if len(hits) < self.page_size:
                    break
                after = hits[-1]["sort"]
        finally:
            self.client.close_point_in_time(id=pit)
            self.progress.done()
    def afterlife_rows(self, filters: Filters) -> Iterator[AfterlifeRow]:
        """Afterlife documents by target, address, run, age and TLS result (no resolver)."""
        clauses: list[dict[str, Any]] = [
            {"terms": {f: list(v)}} for f, v in (("dns.question.name", filters.targets),
                                                 ("observer.name", filters.observers)) if v]
        rng = _range(filters.lower, filters.upper)
        if rng:
            clauses.append({"range": {"@timestamp": rng}})
        sources = [{"target": _terms("dns.question.name")}, {"ip": _terms("destination.ip")},
                   {"run": _terms("edgewatch.run.id")},
                   {"age": _terms("edgewatch.afterlife.age.s")},
                   {"tls": _terms("tls.established", True)},
                   {"verified": _terms("edgewatch.tls.verified", True)}]
        for b in self._composite(self.afterlife_index, {"bool": {"filter": clauses}}, sources,
                                 "afterlife"):
            k = b["key"]
            yield AfterlifeRow(k["target"], k["ip"], k["run"], int(k["age"]),
                               _flag(k["tls"]), _flag(k["verified"]), b["doc_count"])

    def ignored(self, filters: Filters, runs: bool = True) -> tuple[int, int]:
        """Checks and runs the selection holds but the plausible window left out."""
        wide = filters.unbounded()
        checks = 0
        rng = _range(filters.not_before, filters.not_after)
        if rng:
            query = self._checks_query(wide)
            query["bool"]["must_not"] = [{"range": {"@timestamp": rng}}]
            checks = self._count(self.checks_index, query)
        outside = self._runs_plausible(filters) if runs else []
        runs_out = 0
        if outside:
            query = self._runs_query(wide, plausible=False)
            query["bool"]["must_not"] = [{"bool": {"filter": outside}}]
            runs_out = self._count(self.runs_index, query)
        return checks, runs_out

    def _count(self, index: str, query: dict[str, Any]) -> int:
        resp = self.client.count(index=index, query=query, ignore_unavailable=True,
                                 allow_no_indices=True)
        return int(resp.get("count", 0))
