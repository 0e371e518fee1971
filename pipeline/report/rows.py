"""The aggregated rows every evidence source yields, and the interface a source implements.

The report never sees single check documents. A source reduces them to a few kinds of grouped
counts (which an Elasticsearch composite aggregation can page through and a streaming scan of the
ndjson store can build in a dictionary), so memory grows with the number of distinct
(day, resolver, address) combinations, never with the number of checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pipeline.report.answers import AnswerRow
from pipeline.report.filters import Filters

DAY_S = 86400
TIMING_FIELDS = ("tls.rtt.handshake.us", "tcp.rtt.connect.us")


@dataclass(frozen=True, slots=True)
class Span:
    """First and last ``@timestamp`` of the selected checks."""

    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class AddressRow:
    """Check documents about one answer address, grouped by day and resolver.

    ``day`` counts whole 24 h periods from the report's origin (day 0 starts at the origin).
    ``documents`` is every document naming the address; ``ok`` those with outcome success.
    """

    day: int
    resolver: str
    ip: str
    documents: int
    ok: int


@dataclass(frozen=True, slots=True)
class NetworkRow:
    """How the documents naming ``ip`` attributed it (one row per distinct attribution).

    Kept apart from ``AddressRow`` because attribution belongs to the address, not to the day
    or resolver: grouping by it once is far cheaper than carrying it through every group.
    """

    ip: str
    prefix24: str | None
    prefix: str | None
    asn: int | None
    domain: str | None
    documents: int


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """Documents of one resolver grouped by outcome, error type and answer size.

    The answer size lets a source-independent formula count queries: a successful answer with
    n addresses yields n documents that each carry ``edgewatch.dns.answer_count = n``.
    """

    resolver: str
    outcome: str | None
    error_type: str | None
    answer_count: int | None
    documents: int


@dataclass(frozen=True, slots=True)
class TimingRow:
    """How many documents of a resolver had ``field`` in the bucket starting at ``bucket_us``."""

    resolver: str
    field: str
    bucket_us: int
    documents: int


@dataclass(frozen=True, slots=True)
class TargetAddressRow:
    """Successful check documents about one address, by day, target and resolver.

    What allowlist coverage needs (``edgewatch allowlist verify``, the report's list sections):
    whether a list lets each of them through, per target and resolver, and since when it
    misses an address (``first``: the earliest of the group's checks).
    """

    day: int
    target: str
    resolver: str
    ip: str
    ok: int
    first: datetime


@dataclass(frozen=True, slots=True)
class RunRow:
    """The latest summary of one IP run (only what run statistics need)."""

    run_id: str
    resolver: str
    ip: str
    open: bool
    duration_s: float
    observed_s: float


@dataclass(frozen=True, slots=True)
class RunLengthRow:
    """How many runs of a resolver had ``length_s`` (rounded to the nearest multiple of the
    sampling interval, ``run_stats.bucket_length``), ended or still open."""

    resolver: str
    open: bool
    length_s: float
    runs: int


@dataclass(frozen=True, slots=True)
class RunAddressRow:
    """The runs of one address as one resolver saw it: how many, and their summed length."""

    resolver: str
    ip: str
    runs: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class AfterlifeRow:
    """Afterlife documents of one retired address (and the run that retired it) at one age,
    grouped by what the TLS handshake gave (None: the field is absent, e.g. no TCP)."""

    target: str
    ip: str
    run_id: str
    age_s: int
    tls_established: bool | None
    tls_verified: bool | None
    documents: int


@dataclass(frozen=True, slots=True)
class ObserverRow:
    """Check documents of one observer grouped by answer address (None: a failed query) and
    outcome: the "by observer" section's addresses and failures (``report.observers``)."""

    observer: str
    ip: str | None
    outcome: str | None
    error_type: str | None
    answer_count: int | None
    documents: int


@dataclass(frozen=True, slots=True)
class ObserverRunRow:
    """How many selected runs (latest summaries) of one observer are open or closed."""

    observer: str
    open: bool
    runs: int


class Source(Protocol):
    """Where stored evidence comes from: Elasticsearch or the local ndjson store.

    Every method streams; callers fold the rows into their own (small) accumulators. A source
    may also say what its reading met: ``skipped_lines`` (unusable lines), ``duplicate_lines``
    (a document stored twice, counted once) and ``warnings()`` (one line per file).
    """

    description: str

    def span(self, filters: Filters) -> Span | None: ...

    def address_rows(self, filters: Filters, origin: datetime) -> Iterator[AddressRow]: ...

    def network_rows(self, filters: Filters) -> Iterator[NetworkRow]: ...

    def outcome_rows(self, filters: Filters) -> Iterator[OutcomeRow]: ...

    def timing_rows(self, filters: Filters, bucket_us: int) -> Iterator[TimingRow]: ...

    def run_rows(self, filters: Filters) -> Iterator[RunRow]: ...

    def run_gaps(self, filters: Filters, limit: int) -> list[float]:
        """``duration − observed`` of the ``limit`` closed runs with the smallest run ids."""
        ...

    def run_length_rows(self, filters: Filters, interval_s: float) -> Iterator[RunLengthRow]:
        ...

    def run_address_rows(self, filters: Filters) -> Iterator[RunAddressRow]: ...

    def answer_rows(self, filters: Filters) -> list[AnswerRow]:
        """One row per query in time order (``pipeline.report.answers``), for the replay and
        the per-target report; optional: a source without it gets no replay sections."""
        ...
    def target_names(self, filters: Filters) -> list[str]:
        """The targets (``dns.question.name``) the selected checks name, sorted: whom the
        per-target reports are for when the replay is left out."""
        ...

    def observer_names(self, filters: Filters) -> list[str]:
        """The observers (``observer.name``) of the selected checks, sorted."""
        ...

    def target_address_rows(self, filters: Filters, origin: datetime
                            ) -> Iterator[TargetAddressRow]: ...

    def observer_rows(self, filters: Filters) -> Iterator[ObserverRow]: ...

    def observer_run_rows(self, filters: Filters) -> Iterator[ObserverRunRow]: ...

    def ignored(self, filters: Filters, runs: bool = True) -> tuple[int, int]:
        """(checks, runs) the selection holds that ``filters``' plausible window left out."""
        ...
