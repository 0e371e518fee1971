"""The report as data: every figure the renderers show, in plain dataclasses.

``Report.to_dict()`` is the ``--format json`` document (schema ``edgewatch.report/1``, described
in docs/REPORT.md); renderers and tests read the same objects, so what a test asserts is what a
person sees.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pipeline.report.list_coverage import ListCoverage

SCHEMA = "edgewatch.report/1"
ALL = "(all)"
GRANULARITIES = ("ip", "prefix24", "prefix")


@dataclass
class Window:
    """The time the evidence covers; ``days`` are 24 h periods counted from ``origin``."""

    start: str | None
    end: str | None
    origin: str | None
    days: int
    seconds: float
    interval_s: float | None
    interval_source: str  # "given", "inferred from runs" or "unknown"


@dataclass
class Networks:
    addresses: int
    prefix24s: int
    prefixes: int
    asns: int
    edge_hostnames: list[str]


@dataclass
class RunLength:
    """Kaplan–Meier run length (seconds); bounds are ± one sampling interval (see
    ``build._run_length``); None where open runs keep the curve from reaching the quantile."""

    runs: int
    closed: int
    open: int
    median_s: float | None
    median_bounds_s: list[float | None]
    p90_s: float | None
    p90_bounds_s: list[float | None]
    curve: list[list[float]]  # [t_s, S(t)] steps, starting at [0, 1]


@dataclass
class FailureRate:
    kind: str
    unit: str  # "query" or "address check"
    failures: int
    trials: int
    rate: float | None
    ci95: list[float] | None


@dataclass
class Timing:
    field: str
    count: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None


@dataclass
class StableAddress:
    ip: str
    prefix24: str | None
    prefix: str | None
    asn: int | None
    resolvers: int
    runs: int
    presence_s: float
    presence_share: float
    successful_checks: int


@dataclass
class Figures:
    """Everything about one resolver, or about all of them (``name == "(all)"``)."""

    name: str
    documents: int
    successful: int
    queries: int
    networks: Networks
    run_length: RunLength
    failures: list[FailureRate]
    timings: list[Timing]
    stable: list[StableAddress]
    daily_addresses: list[int]


@dataclass
class CoverageLevel:
    target: float
    entries: int
    allowed: float
    prefix24s: int | None = None  # (by ip) how many /24s the chosen addresses fall in
    prefixes: int | None = None  # (by ip or /24) how many announced prefixes


@dataclass
class Coverage:
    by: str
    successful_checks: int
    distinct: int
    levels: list[CoverageLevel]
    curve: list[list[float]]  # [entries, share allowed by the top that many]
    ranked: list[tuple[str, int]] = field(default_factory=list, metadata={"json": False})


@dataclass
class DecayRow:
    built_from_days: int
    size: int
    shares: list[float | None]  # for days built_from_days + 1 … window.days (1-based)
    first_below_day: int | None


@dataclass
class Decay:
    by: str
    threshold: float
    rows: list[DecayRow]


@dataclass
class Verdict:
    feasible: bool | None
    by: str | None
    headline: str
    details: list[str]


@dataclass
class DataQuality:
    """What the reading left out, so that no figure silently rests on less than was stored.

    ``plausible_from`` / ``plausible_to`` are the plausible window (``report.plausible``);
    ``ignored_checks`` / ``ignored_runs`` were selected but dated outside it. ``skipped_lines``
    are store lines that were not a usable document; ``duplicate_lines`` repeated a stored
    ``_id`` and were counted once.
    """

    plausible_from: str | None = None
    plausible_to: str | None = None
    ignored_checks: int = 0
    ignored_runs: int = 0
    skipped_lines: int = 0
    duplicate_lines: int = 0

    def notes(self) -> list[str]:
        """The report's sentences about it; empty when nothing was left out."""
        out = []
        if self.ignored_checks or self.ignored_runs:
            out.append(
                f"ignored {self.ignored_checks:,} check document(s) and {self.ignored_runs:,} "
                f"run summary(ies) outside the plausible window {self.plausible_from or '…'} → "
                f"{self.plausible_to or '…'} (a wrong clock? name the window with --from/--to "
                "to include them)")
        if self.skipped_lines:
            out.append(f"skipped {self.skipped_lines:,} unreadable store line(s) "
                       "(named on stderr; --strict makes this an error)")
        if self.duplicate_lines:
            out.append(f"{self.duplicate_lines:,} duplicate store line(s) (same _id) "
                       "counted once")
        return out


@dataclass
class AfterlifeEntry:
    """One retired address of a target (the run that retired it), checked on after its end.

    Ages are seconds since the run ended. ``served_until_s``: the age of the last check that
    served the name with a valid certificate before anything else was seen (None: the first
    check already did not); ``verdict``: ``harmless`` (served throughout), ``dead`` (stopped
    serving: refused, timed out or failed the handshake; never another certificate) or ``risk``
    (presented a certificate that does not verify for the name at some check)."""

    ip: str
    run_id: str
    checks: int
    serving: int
    refusing: int
    other_certificate: int
    served_until_s: float | None
    first_refusing_s: float | None
    first_other_certificate_s: float | None
    last_age_s: float
    verdict: str


@dataclass
class Afterlife:
    """``[afterlife]`` evidence of one target: what its stale allowlist entries would reach."""

    target: str
    entries: int  # retired addresses (address × retiring run) checked
    checks: int
    harmless: int
    dead: int
    risk: int
    first_refusing_median_s: float | None
    first_other_certificate_min_s: float | None
    longest_checked_s: float
    verdict: str
    addresses: list[AfterlifeEntry] = field(default_factory=list)


@dataclass
class ObserverFigures:
    """One observer (probe) of the "by observer" section: what it saw, how often it failed,
    and the addresses no other observer saw (``only_here``)."""

    name: str
    addresses: int
    runs: int
    open_runs: int
    queries: int
    dns_failures: int
    address_checks: int
    address_failures: int
    only_here: list[str] = field(default_factory=list)


@dataclass
class Report:
    generated_at: str
    source: str
    filters: dict[str, Any]
    window: Window
    overall: Figures
    resolvers: list[Figures]
    coverage: list[Coverage]
    decay: list[Decay]
    verdict: Verdict
    data: DataQuality = field(default_factory=DataQuality)
    blocks: list[Any] = field(default_factory=list)  # pipeline.report.blocks.BlockLevel
    targets: list[Any] = field(default_factory=list)  # per-target Reports (build_by_target)
    replay: Any = None  # pipeline.replay.build.TargetReplay of this report's target
    # why the replay sections are missing (``by_target.replay_left_out``), else None
    replay_note: str | None = None
    # one per deployed allowlist (``[[allowlists]]`` of the config, ``--list``): its coverage
    allowlists: list[ListCoverage] = field(default_factory=list)
    afterlife: list[Afterlife] = field(default_factory=list)  # per target, [afterlife] on
    # "by observer": one entry per observer, only when the selection holds more than one
    observers: list[ObserverFigures] = field(default_factory=list)
    schema: str = SCHEMA

    @property
    def target_label(self) -> str:
        """The target(s) this report was selected for, as a heading names them."""
        return self.replay.target if self.replay else ", ".join(self.filters["targets"])

    def coverage_by(self, by: str) -> Coverage:
        return next(c for c in self.coverage if c.by == by)

    def decay_by(self, by: str) -> Decay:
        return next(d for d in self.decay if d.by == by)

    def resolver(self, name: str) -> Figures:
        return next(r for r in self.resolvers if r.name == name)

    def to_dict(self) -> dict[str, Any]:
        out = _plain(self)
        assert isinstance(out, dict)
        return {"schema": out.pop("schema"), **out}


def _plain(value: Any) -> Any:
    """dataclasses → dicts, skipping fields marked ``json: False``; floats rounded for reading."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.metadata.get("json", True)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    return value
