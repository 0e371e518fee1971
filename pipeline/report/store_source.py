"""The local ndjson store as an evidence source, read as a stream.

Layout (docs/DOCUMENTS.md): ``checks-YYYY-MM-DD.ndjson`` by UTC day of ``@timestamp`` and
``runs-YYYY-MM-DD.ndjson`` holding run-summary snapshots, of which the one with the highest
``edgewatch.run.version`` per ``run.id`` counts. Lines are parsed one at a time and folded into
grouped counts, so a store of millions of checks needs memory for its distinct
(day, resolver, address) groups only. One scan feeds all three check views and is cached.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from pipeline.report.filters import Filters
from pipeline.report.progress import Progress
from pipeline.report.rows import (
    DAY_S,
    TIMING_FIELDS,
    AddressRow,
    NetworkRow,
    OutcomeRow,
    RunRow,
    Span,
    TimingRow,
)

_FILE = re.compile(r"^(checks|runs)-(\d{4}-\d{2}-\d{2})\.ndjson$")


def field_value(doc: dict[str, Any], key: str) -> Any:
    """A field of a flat document (``"a.b"`` keys); nested objects are accepted too."""
    if key in doc:
        return doc[key]
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


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


class StoreSource:
    """Reads ``checks-*.ndjson`` / ``runs-*.ndjson`` from one store folder."""

    def __init__(self, store_dir: Path | str, progress: Progress | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.description = f"ndjson store {self.store_dir}"
        self.progress = progress or Progress(enabled=False)
        self._scan: tuple[Filters, _Scan] | None = None

    # -- files ---------------------------------------------------------------------------

    def _files(self, kind: str, filters: Filters | None = None) -> list[Path]:
        """Files of one kind in day order; check files outside the window are not opened."""
        if not self.store_dir.is_dir():
            raise FileNotFoundError(f"no ndjson store at {self.store_dir}")
        out = []
        for path in sorted(self.store_dir.iterdir()):
            m = _FILE.match(path.name)
            if not m or m.group(1) != kind:
                continue
            if kind == "checks" and filters is not None and not _day_in(
                date.fromisoformat(m.group(2)), filters
            ):
                continue
            out.append(path)
        return out

    def _docs(self, paths: Iterable[Path], label: str) -> Iterator[dict[str, Any]]:
        for path in paths:
            with path.open("rb") as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        yield orjson.loads(line)
                    if n % 200_000 == 0:
                        self.progress.update(f"{label}: {path.name} line {n:,}")

    def _checks(self, paths: Iterable[Path], filters: Filters) -> Iterator[tuple[datetime, dict]]:
        for doc in self._docs(paths, "reading checks"):
            if not filters.names_match(
                field_value(doc, "dns.question.name"),
                field_value(doc, "observer.name"),
                field_value(doc, "resolver.name"),
            ):
                continue
            ts = parse_ts(doc["@timestamp"])
            if filters.time_match(ts):
                yield ts, doc

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
        for ts, doc in self._checks(self._files("checks", filters), filters):
            resolver = field_value(doc, "resolver.name")
            outcome = field_value(doc, "event.outcome")
            ip = field_value(doc, "destination.ip")
            scan.outcomes[(resolver, outcome, field_value(doc, "error.type"),
                           field_value(doc, "dns.answer.count"))] += 1
            if ip is not None:
                key = (int((ts.timestamp() - origin_s) // DAY_S), resolver, ip)
                scan.addresses[key] += 1
                if outcome == "success":
                    scan.ok[key] += 1
                scan.networks[(ip, field_value(doc, "destination.prefix24"),
                               field_value(doc, "destination.prefix"),
                               field_value(doc, "destination.as.number"),
                               field_value(doc, "destination.domain"))] += 1
            for name in TIMING_FIELDS:
                value = field_value(doc, name)
                if value is not None:
                    bucket = int(value) // scan.bucket_us * scan.bucket_us
                    scan.timings[(resolver, name, bucket)] += 1
        self._scan = (filters, scan)
        self.progress.done()
        return scan

    def address_rows(self, filters: Filters, origin: datetime) -> Iterator[AddressRow]:
        scan = self._scanned(filters, origin, None)
        for key, n in scan.addresses.items():
            day, resolver, ip = key
            yield AddressRow(day=day, resolver=resolver, ip=ip, documents=n,
                             ok=scan.ok.get(key, 0))

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

    def run_rows(self, filters: Filters) -> Iterator[RunRow]:
        latest: dict[str, tuple[int, dict[str, Any]]] = {}
        for doc in self._docs(self._files("runs"), "reading runs"):
            run_id = field_value(doc, "run.id")
            version = int(field_value(doc, "edgewatch.run.version") or 0)
            if run_id is None:
                continue
            seen = latest.get(run_id)
            if seen is None or version > seen[0]:
                latest[run_id] = (version, doc)
        for run_id, (_, doc) in latest.items():
            if not filters.names_match(field_value(doc, "dns.question.name"),
                                       field_value(doc, "observer.name"),
                                       field_value(doc, "resolver.name")):
                continue
            start = parse_ts(field_value(doc, "run.start"))
            last_seen = parse_ts(field_value(doc, "run.last_seen"))
            if filters.end is not None and start >= filters.end:
                continue
            if filters.start is not None and last_seen < filters.start:
                continue
            yield RunRow(
                run_id=run_id,
                resolver=field_value(doc, "resolver.name"),
                ip=field_value(doc, "destination.ip"),
                open=bool(field_value(doc, "run.open")),
                duration_s=float(field_value(doc, "run.duration.s") or 0),
                observed_s=float(field_value(doc, "run.observed.s") or 0),
            )


def _day_in(day: date, filters: Filters) -> bool:
    """Whether a UTC day file can hold checks inside the window."""
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if filters.end is not None and day_start >= filters.end:
        return False
    return not (filters.start is not None and day_start + timedelta(days=1) <= filters.start)
