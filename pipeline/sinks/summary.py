"""Keeps the figures a person wants at the end of ``edgewatch run``, whatever the other sinks are.

It sees the same records as the real sinks, so the closing summary describes exactly what was
stored: unique addresses and runs per resolver, failures by kind.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.documents import Record


@dataclass
class ResolverFigures:
    checks: int = 0
    addresses: set[str] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)  # runs seen in this process and still open
    closed_runs: int = 0  # runs seen here that have ended since (their ids are let go)
    failures: Counter[str] = field(default_factory=Counter)


class SummarySink:
    name = "summary"

    def __init__(self) -> None:
        self.by_resolver: dict[str, ResolverFigures] = defaultdict(ResolverFigures)
        # A check's documents (one per address) arrive together, in one cycle's write; checks
        # of different cycles have different ids. So the checks counted are remembered for
        # the current and the previous write only: a set of every check ever seen grew by
        # ≈ 6 KiB a cycle (28 checks) in a long run, most of the soak's RSS growth.
        self._checks_seen: set[tuple[str, str]] = set()
        self._checks_before: set[tuple[str, str]] = set()
        self.documents = 0

    async def open(self) -> None:
        return None

    async def write(self, records: Sequence[Record]) -> None:
        self._checks_before, self._checks_seen = self._checks_seen, set()
        for record in records:
            if record.kind == "run":
                self._run_summary(record.doc)
                continue
            if record.kind != "check":
                continue
            self.documents += 1
            doc = record.doc
            fig = self.by_resolver[doc["edgewatch.resolver.name"]]
            key = (doc["edgewatch.check.id"], doc["edgewatch.resolver.name"])
            if key not in self._checks_seen and key not in self._checks_before:
                self._checks_seen.add(key)
                fig.checks += 1
                dns_error = doc.get("error.type", "") if "destination.ip" not in doc else ""
                if dns_error:
                    fig.failures[dns_error] += 1
            if "destination.ip" in doc:
                fig.addresses.add(doc["destination.ip"])
                if "edgewatch.run.id" in doc:
                    fig.runs.add(doc["edgewatch.run.id"])
                if doc.get("error.type"):
                    fig.failures[doc["error.type"]] += 1

    def _run_summary(self, doc: dict) -> None:
        """A run that ended is counted and forgotten: the set holds open runs only, which
        the addresses being answered bound, instead of every run of a months-long process."""
        if doc.get("edgewatch.run.open", True):
            return
        fig = self.by_resolver.get(doc.get("edgewatch.resolver.name", ""))
        run_id = doc.get("edgewatch.run.id")
        if fig is not None and run_id in fig.runs:
            fig.runs.discard(run_id)
            fig.closed_runs += 1

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def render(self) -> str:
        rows = [("resolver", "checks", "addresses", "runs", "failures")]
        for name in sorted(self.by_resolver):
            f = self.by_resolver[name]
            fails = ", ".join(f"{k} {v}" for k, v in sorted(f.failures.items())) or "-"
            rows.append((name, str(f.checks), str(len(f.addresses)),
                         str(len(f.runs) + f.closed_runs), fails))
        all_addr = set().union(*(f.addresses for f in self.by_resolver.values())) \
            if self.by_resolver else set()
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
                 for r in rows]
        lines.append(f"{len(all_addr)} distinct addresses over all resolvers; "
                     f"{self.documents} check documents")
        return "\n".join(lines)
