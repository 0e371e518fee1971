"""Every index, data stream, template and policy name edgewatch uses, spelled once.

Check documents follow the Elastic data stream naming scheme ``<type>-<dataset>-<namespace>`` so
that Kibana and anyone used to Fleet data find them where they expect; run summaries are a plain
index because they are updated in place by ``_id``.
"""

from __future__ import annotations

CHECK_DATASET = "edgewatch.check"
RUN_DATASET = "edgewatch.run"
EVENT_DATASET = "edgewatch.event"
CHECK_INDEX_TEMPLATE = f"logs-{CHECK_DATASET}"
EVENT_INDEX_TEMPLATE = f"logs-{EVENT_DATASET}"
RUNS_INDEX_TEMPLATE = "edgewatch-runs"

# Every namespace at once: what the index templates match and what Kibana's data views read.
CHECKS_INDEX_PATTERN = f"{CHECK_INDEX_TEMPLATE}-*"
RUNS_INDEX_PATTERN = f"{RUNS_INDEX_TEMPLATE}-*"
EVENTS_INDEX_PATTERN = f"{EVENT_INDEX_TEMPLATE}-*"
LIFECYCLE_POLICY = "edgewatch-checks"

BASE_MAPPINGS = "edgewatch-base@mappings"
CHECK_MAPPINGS = "edgewatch-check@mappings"
CHECK_SETTINGS = "edgewatch-check@settings"
RUN_MAPPINGS = "edgewatch-run@mappings"
RUN_SETTINGS = "edgewatch-run@settings"
EVENT_MAPPINGS = "edgewatch-event@mappings"

# Record kind -> (index template of its data stream, or None for the runs index; ndjson store
# file stem). Data stream kinds are append-only (``create``, a 409 is a replay); the one other
# kind, runs, is indexed in place by version. A new kind of document is one line here (and its
# template in mappings/).
RECORD_KINDS: dict[str, tuple[str | None, str]] = {
    "check": (CHECK_INDEX_TEMPLATE, "checks"),
    "run": (None, "runs"),
    "event": (EVENT_INDEX_TEMPLATE, "events"),
}


def check_data_stream(namespace: str) -> str:
    """``logs-edgewatch.check-<namespace>``: where check documents are created."""
    return f"{CHECK_INDEX_TEMPLATE}-{namespace}"


def data_stream(kind: str, namespace: str) -> str | None:
    """``logs-edgewatch.<kind>-<namespace>`` for a data stream kind, None for run summaries
    (and for a kind not in ``RECORD_KINDS``, which ``bulk.action_header`` refuses)."""
    template = RECORD_KINDS.get(kind, (None, ""))[0]
    return None if template is None else f"{template}-{namespace}"


def store_stem(kind: str) -> str:
    """The ndjson store file stem of a record kind (``checks``, ``runs``, ``events``)."""
    return RECORD_KINDS[kind][1]


def event_data_stream(namespace: str) -> str:
    """``logs-edgewatch.event-<namespace>``: where event documents are created."""
    return f"{EVENT_INDEX_TEMPLATE}-{namespace}"


def runs_index(namespace: str) -> str:
    """``edgewatch-runs-<namespace>``: run summaries, one document per ``edgewatch.run.id``."""
    return f"{RUNS_INDEX_TEMPLATE}-{namespace}"
