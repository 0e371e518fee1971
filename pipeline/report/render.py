"""Renderers by name, and the JSON one (the others live in ``text`` and ``html``)."""

from __future__ import annotations

import json

from pipeline.report.html import render_html
from pipeline.report.model import Report
from pipeline.report.text import render_text


def render_json(report: Report) -> str:
    """``--format json``: the ``edgewatch.report/1`` document, keys in a stable order."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


__all__ = ["render_html", "render_json", "render_text"]
