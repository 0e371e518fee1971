"""Every index, data stream, template and policy name edgewatch uses, spelled once.

Check documents follow the Elastic data stream naming scheme ``<type>-<dataset>-<namespace>`` so
that Kibana and anyone used to Fleet data find them where they expect; run summaries are a plain
index because they are updated in place by ``_id``.
"""

from __future__ import annotations

CHECK_DATASET = "edgewatch.check"
RUN_DATASET = "edgewatch.run"
CHECK_INDEX_TEMPLATE = f"logs-{CHECK_DATASET}"
RUNS_INDEX_TEMPLATE = "edgewatch-runs"

# Every namespace at once: what the index templates match and what Kibana's data views read.
CHECKS_INDEX_PATTERN = f"{CHECK_INDEX_TEMPLATE}-*"
RUNS_INDEX_PATTERN = f"{RUNS_INDEX_TEMPLATE}-*"
LIFECYCLE_POLICY = "edgewatch-checks"

BASE_MAPPINGS = "edgewatch-base@mappings"
CHECK_MAPPINGS = "edgewatch-check@mappings"
CHECK_SETTINGS = "edgewatch-check@settings"
RUN_MAPPINGS = "edgewatch-run@mappings"
RUN_SETTINGS = "edgewatch-run@settings"


def check_data_stream(namespace: str) -> str:
    """``logs-edgewatch.check-<namespace>``: where check documents are created."""
    return f"{CHECK_INDEX_TEMPLATE}-{namespace}"


def runs_index(namespace: str) -> str:
    """``edgewatch-runs-<namespace>``: run summaries, one document per ``edgewatch.run.id``."""
    return f"{RUNS_INDEX_TEMPLATE}-{namespace}"
