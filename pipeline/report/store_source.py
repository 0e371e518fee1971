"""The local ndjson store as an evidence source, read as a stream.

Layout (docs/DOCUMENTS.md): ``checks-YYYY-MM-DD.ndjson`` by UTC day of ``@timestamp`` and
``runs-YYYY-MM-DD.ndjson`` holding run-summary snapshots, of which the one with the highest
``edgewatch.run.version`` per ``edgewatch.run.id`` counts. Lines are parsed one at a time and
folded into grouped counts, so a store of millions of checks needs memory for its distinct
(day, resolver, address) groups only. One scan feeds all three check views and is cached.

Every line goes through ``store_lines``: a corrupt or implausible line is skipped and counted
(``strict`` makes it an error), and a document stored twice under one ``_id`` counts once, as in
Elasticsearch, so both sources give the same figures on the same data.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.report.answers import AnswerRow, fold_answers
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
    RunAddressRow,
    RunLengthRow,
    RunRow,
    Span,
    TargetAddressRow,
    TimingRow,
)
from pipeline.report.run_stats import fold_runs, gap_sample
from pipeline.report.store_lines import Distinct, StoreLines, field_value, parse_ts

_FILE = re.compile(r"^(checks|runs|afterlife)-(\d{4}-\d{2}-\d{2})\.ndjson$")

__all__ = ["StoreSource", "field_value", "parse_ts"]


@dataclass
class _Scan:
    """Everything one pass over the check files yields for one selection and origin."""

    origin: datetime
    bucket_us: int
    addresses: Counter = field(default_factory=Counter)
    ok: Counter = field(default_factory=Counter)
    networks: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    timings: Counter = field(default_factory=Counter)
    # (observer, ip, outcome, error type, answer count): the "by observer" section
    observers: Counter = field(default_factory=Counter)
    targets: Counter = field(default_factory=Counter)  # documents per dns.question.name


class StoreSource:
    """Reads ``checks-*.ndjson`` / ``runs-*.ndjson`` from one store folder."""

    def __init__(self, store_dir: Path | str, progress: Progress | None = None,
                 strict: bool = False) -> None:
        self.store_dir = Path(store_dir)
        self.description = f"ndjson store {self.store_dir}"
        self.progress = progress or Progress(enabled=False)
        self.lines = StoreLines(strict=strict, on_line=self._on_line)
        self.duplicates = {"checks": 0, "runs": 0}
        self._scan: tuple[Filters, _Scan] | None = None
        self._ignored_runs: dict[Filters, int] = {}
        self._runs_read: tuple[Filters, list[RunRow]] | None = None

    def _on_line(self, path: Path, n: int) -> None:
        self.progress.update(f"reading {path.name} line {n:,}")

    # -- what the reading met ------------------------------------------------------------

    @property
    def skipped_lines(self) -> int:
        """Unreadable or invalid lines skipped (each counted once however often read)."""
        return self.lines.skipped

    @property
    def duplicate_lines(self) -> int:
        """Lines repeating an ``_id`` (a run summary: an ``_id`` and version) already read."""
        return sum(self.duplicates.values())

    def warnings(self) -> list[str]:
        """One line per file with skipped lines: its name, the first bad lines, the total."""
        return self.lines.warnings()

    # -- files ---------------------------------------------------------------------------

    def _files(self, kind: str, filters: Filters | None = None) -> list[Path]:
        """Files of one kind in day order; check files outside the window are not opened."""
        if not self.store_dir.is_dir():
            raise FileNotFoundError(
                f"no ndjson store at {self.store_dir} (nothing measured there yet: "
                "`edgewatch run` writes it; or pass --config, --store or --es-url)")
        out = []
        for path in sorted(self.store_dir.iterdir()):
            m = _FILE.match(path.name)
            if not m or m.group(1) != kind or not path.is_file():
                continue
            if kind != "runs" and filters is not None and not _day_in(
                date.fromisoformat(m.group(2)), filters.lower, filters.upper
            ):
                continue
            out.append(path)
        return out

    def _docs(self, paths: Iterable[Path], kind: str,
              distinct: Distinct | None = None) -> Iterator[dict[str, Any]]:
        for path in paths:
            if distinct is None:
                for _, doc in self.lines.read(path, kind):
                    yield doc
                continue
            current, previous = distinct.start(path)
            for _, doc in self.lines.read(path, kind):
                doc_id = doc["_id"]
                if doc_id in current or doc_id in previous:
                    distinct.duplicates += 1
                    continue
                current.add(doc_id)
                yield doc

    def _checks(self, paths: Iterable[Path], filters: Filters,
                distinct: Distinct | None = None) -> Iterator[tuple[datetime, dict]]:
        lower, upper = filters.lower, filters.upper  # once, not per line
        by_name = filters.by_keyword
        for doc in self._docs(paths, "checks", distinct):
            if by_name and not filters.names_match(
                field_value(doc, "dns.question.name"),
                field_value(doc, "observer.name"),
                field_value(doc, "edgewatch.resolver.name"),
                field_value(doc, "dns.question.type"),
            ):
                continue
            ts = parse_ts(doc["@timestamp"])
            if (lower is None or ts >= lower) and (upper is None or ts < upper):
                yield ts, doc

    def checks(self, filters: Filters) -> Iterator[tuple[datetime, dict[str, Any]]]:
        """Every selected check document once (by ``_id``), with its timestamp: for readers
        that need documents rather than the report's grouped rows (the living allowlist)."""
        yield from self._checks(self._files("checks", filters), filters, Distinct())

    # -- Source interface ----------------------------------------------------------------

    def span(self, filters: Filters) -> Span | None:
        files = self._files("checks", filters)
        first = last = None
        for path in files:  # the earliest file with a match holds the first timestamp
            first = min((ts for ts, _ in self._checks([path], filters)), default=None)
            if first is not None:
                break
        for path in reversed(files):
            last = max((ts for ts, _ in self._checks([path], filters)), default=None)
            if last is not None:
                break
        if first is None or last is None:
            return None
        return Span(first=first, last=last)

    def _scanned(self, filters: Filters, origin: datetime | None, bucket_us: int | None) -> _Scan:
        if self._scan is not None:
            cached_filters, scan = self._scan
            if cached_filters == filters and origin in (None, scan.origin) and bucket_us in (
                None, scan.bucket_us,
            ):
                return scan
        scan = _Scan(origin=origin or datetime(1970, 1, 1, tzinfo=UTC),
                     bucket_us=bucket_us or 100)
        origin_s = scan.origin.timestamp()
        distinct = Distinct()
        for ts, doc in self._checks(self._files("checks", filters), filters, distinct):
            resolver = field_value(doc, "edgewatch.resolver.name")
            outcome = field_value(doc, "event.outcome")
            ip = field_value(doc, "destination.ip")
            error = field_value(doc, "error.type")
            count = field_value(doc, "edgewatch.dns.answer_count")
            scan.outcomes[(resolver, outcome, error, count)] += 1
            scan.targets[field_value(doc, "dns.question.name")] += 1
            scan.observers[(field_value(doc, "observer.name"), ip, outcome, error, count)] += 1
            if ip is not None:
                key = (int((ts.timestamp() - origin_s) // DAY_S), resolver, ip)
                scan.addresses[key] += 1
                if outcome == "success":
                    scan.ok[key] += 1
                scan.networks[(ip, field_value(doc, "edgewatch.destination.prefix24"),
                               field_value(doc, "edgewatch.destination.prefix"),
                               field_value(doc, "destination.as.number"),
                               field_value(doc, "destination.domain"))] += 1
            for name in TIMING_FIELDS:
                value = field_value(doc, name)
                if value is not None:
                    bucket = int(value) // scan.bucket_us * scan.bucket_us
                    scan.timings[(resolver, name, bucket)] += 1
        self.duplicates["checks"] = distinct.duplicates
        self._scan = (filters, scan)
        self.progress.done()
        return scan

    def address_rows(self, filters: Filters, origin: datetime) -> Iterator[AddressRow]:
        scan = self._scanned(filters, origin, None)
        for key, n in scan.addresses.items():
            day, resolver, ip = key
            yield AddressRow(day=day, resolver=resolver, ip=ip, documents=n,
                             ok=scan.ok.get(key, 0))

    def target_address_rows(self, filters: Filters, origin: datetime
                            ) -> Iterator[TargetAddressRow]:
        """A pass of its own (the allowlist views only): successful checks by day, target,
        resolver and address, with the earliest."""
        ok: Counter = Counter()
        first: dict[tuple, datetime] = {}
        origin_s = origin.timestamp()
        for ts, doc in self._checks(self._files("checks", filters), filters, Distinct()):
            ip = field_value(doc, "destination.ip")
            if ip is None or field_value(doc, "event.outcome") != "success":
                continue
            key = (int((ts.timestamp() - origin_s) // DAY_S), field_value(doc, "dns.question.name"),
                   field_value(doc, "edgewatch.resolver.name"), ip)
            ok[key] += 1
            if key not in first or ts < first[key]:
                first[key] = ts
        self.progress.done()
        for key, n in ok.items():
            day, target, resolver, ip = key
            yield TargetAddressRow(day=day, target=target, resolver=resolver, ip=ip, ok=n,
                                   first=first[key])

    def target_names(self, filters: Filters) -> list[str]:
        """The targets the selected checks name, sorted (from the cached scan)."""
        return sorted(t for t in self._scanned(filters, None, None).targets if t)

    def observer_names(self, filters: Filters) -> list[str]:
        """The observers of the selected checks, sorted (from the cached scan)."""
        return sorted({k[0] for k in self._scanned(filters, None, None).observers if k[0]})

    def network_rows(self, filters: Filters) -> Iterator[NetworkRow]:
        scan = self._scanned(filters, None, None)
        for (ip, p24, prefix, asn, domain), n in scan.networks.items():
            yield NetworkRow(ip=ip, prefix24=p24, prefix=prefix,
                             asn=None if asn is None else int(asn), domain=domain, documents=n)

    def outcome_rows(self, filters: Filters) -> Iterator[OutcomeRow]:
        scan = self._scanned(filters, None, None)
        for (resolver, outcome, error_type, count), n in scan.outcomes.items():
            yield OutcomeRow(resolver=resolver, outcome=outcome, error_type=error_type,
                             answer_count=None if count is None else int(count), documents=n)

    def timing_rows(self, filters: Filters, bucket_us: int) -> Iterator[TimingRow]:
        scan = self._scanned(filters, None, bucket_us)
        for (resolver, name, bucket), n in scan.timings.items():
            yield TimingRow(resolver=resolver, field=name, bucket_us=bucket, documents=n)

    def observer_rows(self, filters: Filters) -> Iterator[ObserverRow]:
        scan = self._scanned(filters, None, None)
        for (observer, ip, outcome, error_type, count), n in scan.observers.items():
            yield ObserverRow(observer=observer, ip=ip, outcome=outcome, error_type=error_type,
                              answer_count=None if count is None else int(count), documents=n)

    def observer_run_rows(self, filters: Filters) -> Iterator[ObserverRunRow]:
        groups: Counter = Counter(
            (field_value(doc, "observer.name"), row.open) for doc, row in self._runs(filters))
        for (observer, is_open), n in groups.items():
            yield ObserverRunRow(observer=observer, open=is_open, runs=n)

    def run_rows(self, filters: Filters) -> Iterator[RunRow]:
        for _, row in self._runs(filters):
            yield row

    def _runs(self, filters: Filters) -> list[tuple[dict[str, Any], RunRow]]:
        """The latest snapshot of each run; of equal versions the last read wins, as with
        ``version_type: external_gte`` when ``edgewatch load`` sends the lines in this order."""
        latest: dict[str, tuple[int, dict[str, Any]]] = {}
        repeats = 0
        for doc in self._docs(self._files("runs"), "runs"):
            run_id = field_value(doc, "edgewatch.run.id")
            version = field_value(doc, "edgewatch.run.version")
            seen = latest.get(run_id)
            if seen is None or version >= seen[0]:
                if seen is not None and version == seen[0]:
                    repeats += 1
                latest[run_id] = (version, doc)
        self.duplicates["runs"] = repeats
        ignored = 0
        rows = []
        for run_id, (_, doc) in latest.items():
            if not filters.names_match(field_value(doc, "dns.question.name"),
                                       field_value(doc, "observer.name"),
                                       field_value(doc, "edgewatch.resolver.name"),
                                       field_value(doc, "dns.question.type")):
                continue
            start = parse_ts(field_value(doc, "edgewatch.run.start"))
            last_seen = parse_ts(field_value(doc, "edgewatch.run.last_seen"))
            if not filters.run_overlaps(start, last_seen):
                continue
            if not filters.run_plausible(start, last_seen):
                ignored += 1
                continue
            rows.append((doc, RunRow(
                run_id=run_id,
                resolver=field_value(doc, "edgewatch.resolver.name"),
                ip=field_value(doc, "destination.ip"),
                open=bool(field_value(doc, "edgewatch.run.open")),
                duration_s=float(field_value(doc, "edgewatch.run.duration.s") or 0),
                observed_s=float(field_value(doc, "edgewatch.run.observed.s") or 0),
            )))
        self._ignored_runs[filters] = ignored
        return rows

    def run_gaps(self, filters: Filters, limit: int) -> list[float]:
        return gap_sample(self._run_list(filters), limit)

    def run_length_rows(self, filters: Filters, interval_s: float) -> Iterator[RunLengthRow]:
        yield from fold_runs(self._run_list(filters), interval_s)[0]

    def run_address_rows(self, filters: Filters) -> Iterator[RunAddressRow]:
        # The interval does not matter for the per-address rows.
        yield from fold_runs(self._run_list(filters), 1.0)[1]

    def _run_list(self, filters: Filters) -> list[RunRow]:
        """The latest run summaries, read once per selection: the store keeps one per run
        anyway (to keep the highest version of each), the three grouped reads share it."""
        if self._runs_read is None or self._runs_read[0] != filters:
            self._runs_read = (filters, list(self.run_rows(filters)))
        return self._runs_read[1]

    def answer_rows(self, filters: Filters) -> list[AnswerRow]:
        """One row per query (``pipeline.report.answers``), in time order, for the replay."""
        rows = fold_answers(self._checks(self._files("checks", filters), filters, Distinct()))
        self.progress.done()
        return rows
    def afterlife_rows(self, filters: Filters) -> Iterator[AfterlifeRow]:
        """Afterlife documents grouped by target, address, run, age and TLS result (the
        resolver part of the selection does not apply: these checks follow no resolver)."""
        groups: Counter = Counter()
        for doc in self._docs(self._files("afterlife", filters), "afterlife", Distinct()):
            target = field_value(doc, "dns.question.name")
            if ((filters.targets and target not in filters.targets)
                    or (filters.observers
                        and field_value(doc, "observer.name") not in filters.observers)
                    or not filters.time_match(parse_ts(doc["@timestamp"]))):
                continue
            groups[(target, field_value(doc, "destination.ip"),
                    field_value(doc, "edgewatch.run.id"),
                    int(field_value(doc, "edgewatch.afterlife.age.s")),
                    field_value(doc, "tls.established"),
                    field_value(doc, "edgewatch.tls.verified"))] += 1
        for (target, ip, run_id, age, established, verified), n in groups.items():
            yield AfterlifeRow(target, ip, run_id, age, established, verified, n)

    def ignored(self, filters: Filters, runs: bool = True) -> tuple[int, int]:
        """Checks and runs the selection holds but the plausible window left out."""
        if runs and filters not in self._ignored_runs:
            for _ in self.run_rows(filters):
                pass
        wide = filters.unbounded()
        # Only day files not wholly inside the plausible window can hold such checks.
        paths = [p for p in self._files("checks", wide)
                 if not _day_in(date.fromisoformat(p.name[7:17]), None, None, inside=filters)]
        checks = sum(1 for ts, _ in self._checks(paths, wide, Distinct())
                     if not filters.time_match(ts))
        return checks, self._ignored_runs.get(filters, 0) if runs else 0


def _day_in(day: date, lower: datetime | None, upper: datetime | None,
            inside: Filters | None = None) -> bool:
    """Whether a UTC day file can hold checks in ``[lower, upper)``; with ``inside``, whether
    every instant of the day lies in that selection's window."""
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    day_end = day_start + timedelta(days=1)
    if inside is not None:
        lo, hi = inside.lower, inside.upper
        return (lo is None or day_start >= lo) and (hi is None or day_end <= hi)
    if upper is not None and day_start >= upper:
        return False
    return not (lower is not None and day_end <= lower)
