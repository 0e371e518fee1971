"""Documents as they come back from Elasticsearch, made comparable with the ndjson store's lines.

The store writes flat dotted keys; Elasticsearch returns ``_source`` as the client sent it, but a
test that reads nested objects (or a mapping that nests) must compare dotted keys too. One
function, shared by every test that holds the cluster to a store.
"""

from __future__ import annotations

from typing import Any


def flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys (``{"a": {"b": 1}}`` → ``{"a.b": 1}``); lists stay lists."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
