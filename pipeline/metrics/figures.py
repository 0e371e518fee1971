"""What one cycle's check documents say, counted by the labels the metrics carry.

The figures come from the documents themselves (the same ones every sink receives), so a metric
can never disagree with what was stored: outcomes and error types are ``event.outcome`` and
``error.type``, answer sizes are the documents that carry a ``destination.ip``, and the checks a
deployed list would not let through are those whose ``edgewatch.allowlist.denied`` names it.
Labels are configured names only (target, resolver, list) and the closed set of error types;
never an address, so a CDN handing out a thousand addresses adds no series.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pipeline.documents import Record

Pair = tuple[str, str]  # (target, resolver)
CheckKey = tuple[str, str, str, str]  # (target, resolver, outcome, error_type)
ListKey = tuple[str, str, str]  # (list, target, resolver)

ALLOWED = "edgewatch.allowlist.allowed"
DENIED = "edgewatch.allowlist.denied"


@dataclass
class CycleFigures:
    """One cycle, counted: check documents by outcome, answered addresses, denials per list."""

    checks: Counter[CheckKey] = field(default_factory=Counter)
    addresses: Counter[Pair] = field(default_factory=Counter)
    denied: Counter[ListKey] = field(default_factory=Counter)
    lists: set[str] = field(default_factory=set)  # every list a document was judged against
    pairs: set[Pair] = field(default_factory=set)  # every (target, resolver) with a document


def _names(value: object) -> list[str]:
    """A keyword array as stored (a single keyword may come as a string)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def cycle_figures(records: Sequence[Record], pairs: Iterable[Pair] = ()) -> CycleFigures | None:
    """The figures of the check documents in ``records``; None when there are none (a write of
    run summaries alone, such as the journal re-sent at start, is not a cycle).

    ``pairs`` are the configured (target, resolver) pairs: each gets an address count, 0 when
    it answered nothing, so a resolver gone silent shows as 0 rather than as a missing series.
    """
    docs = [r.doc for r in records if r.kind == "check"]
    if not docs:
        return None
    fig = CycleFigures()
    for pair in pairs:
        fig.addresses[pair] += 0
    for doc in docs:
        pair = (str(doc.get("dns.question.name", "")), str(doc.get("edgewatch.resolver.name", "")))
        fig.pairs.add(pair)
        fig.checks[(*pair, str(doc.get("event.outcome", "")), str(doc.get("error.type", "")))] += 1
        if "destination.ip" not in doc:
            continue
        fig.addresses[pair] += 1
        denied = _names(doc.get(DENIED))
        fig.lists.update(denied, _names(doc.get(ALLOWED)))
        for name in denied:
            fig.denied[(name, *pair)] += 1
    for name in fig.lists:  # a list that let everything through reads 0, not "no data"
        for pair in fig.pairs:
            fig.denied[(name, *pair)] += 0
    return fig
