"""``edgewatch report``: stored measurements in, the allowlisting answer out.

Entry points for code (the CLI and the end-to-end tests use the same ones)::

    source = StoreSource(store_dir)             # or ElasticsearchSource(client, namespace)
    report = build_report(source, Filters(...))  # a Report dataclass with every figure
    render_text(report) / render_json(report) / render_html(report)

The report reads stored documents only (docs/DOCUMENTS.md); it imports nothing from the probe,
run tracking or cycle code.
"""

from pipeline.report.build import Options, build_report
from pipeline.report.es_source import ElasticsearchSource
from pipeline.report.filters import Filters
from pipeline.report.model import Report
from pipeline.report.render import render_html, render_json, render_text
from pipeline.report.store_source import StoreSource

__all__ = [
    "ElasticsearchSource",
    "Filters",
    "Options",
    "Report",
    "StoreSource",
    "build_report",
    "render_html",
    "render_json",
    "render_text",
]
