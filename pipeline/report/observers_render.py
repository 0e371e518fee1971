"""The "by observer" section as text and as HTML (``pipeline.report.observers`` builds it).

Apart from ``text`` and ``html`` for the same reason as the afterlife section: it reads as one
piece, and it is shown only when the selection holds more than one observer.
"""

from __future__ import annotations

from html import escape

from pipeline.report.model import ObserverFigures, Report
from pipeline.report.verdict import pct

HEADERS = ["observer", "addresses", "only here", "runs", "open", "queries", "dns failures",
           "address checks", "check failures"]
ONLY_SHOWN = 12  # addresses named per observer; the count is always complete


def _rows(report: Report) -> list[list[object]]:
    return [[o.name, o.addresses, len(o.only_here), o.runs, o.open_runs, o.queries,
             f"{o.dns_failures} ({pct(_share(o.dns_failures, o.queries), 1)})",
             o.address_checks,
             f"{o.address_failures} ({pct(_share(o.address_failures, o.address_checks), 1)})"]
            for o in report.observers]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _only(o: ObserverFigures) -> str:
    shown = ", ".join(o.only_here[:ONLY_SHOWN])
    more = f" and {len(o.only_here) - ONLY_SHOWN} more" if len(o.only_here) > ONLY_SHOWN else ""
    return f"{o.name}: {shown}{more}" if o.only_here else f"{o.name}: none"


def summary(report: Report) -> str:
    """One sentence: how many addresses a list built from one place alone would miss."""
    only = sum(len(o.only_here) for o in report.observers)
    every = sum(o.addresses for o in report.observers)
    return (f"{len(report.observers)} observers; {only} address(es) were seen by one observer "
            f"only (of {every} observer × address sightings): a list built from one place "
            "misses the others' own addresses.")


def observers_text(report: Report) -> list[str]:
    """The section for ``render_text``; nothing with fewer than two observers."""
    if not report.observers:
        return []
    from pipeline.report.text import _section, table  # (text imports this module)

    return [_section("By observer"), summary(report),
            table(HEADERS, _rows(report), [False, *[True] * (len(HEADERS) - 1)]),
            "Addresses only one observer saw:",
            *[f"  {_only(o)}" for o in report.observers]]


def observers_html(report: Report) -> list[str]:
    """The section for ``render_html``; nothing with fewer than two observers."""
    if not report.observers:
        return []
    from pipeline.report.html import _table  # (html imports this module)

    items = "".join(f"<li>{escape(_only(o))}</li>" for o in report.observers)
    return ["<h2>By observer</h2>", f"<p class='meta'>{escape(summary(report))}</p>",
            _table(HEADERS, _rows(report), left=1),
            f"<p>Addresses only one observer saw:</p><ul>{items}</ul>"]
