"""The "by observer" section: probes in different places, compared (issue 13).

Several probes (``observer.name``) writing into one store or cluster see a CDN from different
places: a resolver that passes the client's subnet on, or a resolver's views by source address,
give each its own answers. The question a firewall team asks is whether one place's list is
enough: per observer its unique addresses, runs and failures, and the addresses only it saw —
what a list built from the other observers alone would miss.

The section is built from two grouped reads every source offers (``Source.observer_rows`` and
``observer_run_rows``), so the store and Elasticsearch give the same figures; it is empty when
the selection holds fewer than two observers (then it would only repeat the overall figures).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable

from pipeline.report.evidence import Outcomes
from pipeline.report.filters import Filters
from pipeline.report.model import ObserverFigures
from pipeline.report.rows import ObserverRow, ObserverRunRow, OutcomeRow, Source


def _ip_key(ip: str) -> tuple[int, int | str]:
    """Numeric order, IPv4 first; a value that is no address sorts last, as text."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return (9, ip)
    return (a.version, int(a))


def observer_section(source: Source, filters: Filters) -> list[ObserverFigures]:
    """The section's figures, one entry per observer sorted by name ([] for one observer)."""
    if not hasattr(source, "observer_rows"):
        return []
    # the usual case, one observer: its names alone (cheap) say there is no section
    if hasattr(source, "observer_names") and len(source.observer_names(filters)) < 2:
        return []
    rows = list(source.observer_rows(filters))
    if len({r.observer for r in rows}) < 2:  # the usual case: no section, so no read of runs
        return []
    return fold(rows, source.observer_run_rows(filters))


def fold(rows: Iterable[ObserverRow], run_rows: Iterable[ObserverRunRow]
         ) -> list[ObserverFigures]:
    """Fold the grouped rows: addresses as sets, outcomes as the report counts them."""
    seen: dict[str, set[str]] = defaultdict(set)
    outcomes: dict[str, Outcomes] = defaultdict(Outcomes)
    runs: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # [all, open]
    for r in rows:
        if r.ip is not None:
            seen[r.observer].add(r.ip)
        outcomes[r.observer].add(OutcomeRow(r.observer, r.outcome, r.error_type,
                                            r.answer_count, r.documents))
    for rr in run_rows:
        runs[rr.observer][0] += rr.runs
        runs[rr.observer][1] += rr.runs if rr.open else 0
    names = sorted(set(outcomes) | set(runs))
    if len(names) < 2:
        return []
    by_ip: dict[str, set[str]] = defaultdict(set)
    for name, ips in seen.items():
        for ip in ips:
            by_ip[ip].add(name)
    out = []
    for name in names:
        o = outcomes[name]
        only = sorted((ip for ip in seen[name] if by_ip[ip] == {name}), key=_ip_key)
        out.append(ObserverFigures(
            name=name, addresses=len(seen[name]), runs=runs[name][0], open_runs=runs[name][1],
            queries=round(o.queries), dns_failures=o.dns_failures,
            address_checks=o.address_checks, address_failures=o.address_failures,
            only_here=only))
    return out
