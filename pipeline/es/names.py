"""Every index, data stream, template and policy name edgewatch uses, spelled once.

Check documents follow the Elastic data stream naming scheme ``<type>-<dataset>-<namespace>`` so
that Kibana and anyone used to Fleet data find them where they expect; run summaries are a plain
index because they are updated in place by ``_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECK_DATASET = "edgewatch.check"
RUN_DATASET = "edgewatch.run"
EVENT_DATASET = "edgewatch.event"
AFTERLIFE_DATASET = "edgewatch.afterlife"
CHECK_INDEX_TEMPLATE = f"logs-{CHECK_DATASET}"
EVENT_INDEX_TEMPLATE = f"logs-{EVENT_DATASET}"
RUNS_INDEX_TEMPLATE = "edgewatch-runs"
AFTERLIFE_INDEX_TEMPLATE = f"logs-{AFTERLIFE_DATASET}"

# Every namespace at once: what the index templates match and what Kibana's data views read.
CHECKS_INDEX_PATTERN = f"{CHECK_INDEX_TEMPLATE}-*"
RUNS_INDEX_PATTERN = f"{RUNS_INDEX_TEMPLATE}-*"
EVENTS_INDEX_PATTERN = f"{EVENT_INDEX_TEMPLATE}-*"
AFTERLIFE_INDEX_PATTERN = f"{AFTERLIFE_INDEX_TEMPLATE}-*"
LIFECYCLE_POLICY = "edgewatch-checks"

BASE_MAPPINGS = "edgewatch-base@mappings"
CHECK_MAPPINGS = "edgewatch-check@mappings"
CHECK_SETTINGS = "edgewatch-check@settings"
RUN_MAPPINGS = "edgewatch-run@mappings"
RUN_SETTINGS = "edgewatch-run@settings"
EVENT_MAPPINGS = "edgewatch-event@mappings"
AFTERLIFE_MAPPINGS = "edgewatch-afterlife@mappings"


def check_data_stream(namespace: str) -> str:
    """``logs-edgewatch.check-<namespace>``: where check documents are created."""
    return f"{CHECK_INDEX_TEMPLATE}-{namespace}"


def event_data_stream(namespace: str) -> str:
    """``logs-edgewatch.event-<namespace>``: where event documents are created."""
    return f"{EVENT_INDEX_TEMPLATE}-{namespace}"


def runs_index(namespace: str) -> str:
    """``edgewatch-runs-<namespace>``: run summaries, one document per ``edgewatch.run.id``."""
    return f"{RUNS_INDEX_TEMPLATE}-{namespace}"


@dataclass(frozen=True, slots=True)
class Kind:
    """Where the records of one kind go: its dataset, its index template and its store files.

    ``data_stream`` kinds are created once each into ``<template>-<namespace>`` (a 409 is a
    replay); the others are indexed by ``_id`` with a version into ``<template>-<namespace>``.
    """

    dataset: str
    template: str
    stem: str  # ndjson store files: <stem>-<day>.ndjson
    data_stream: bool

    def target(self, namespace: str) -> str:
        """The data stream or index this kind's records are written to."""
        return f"{self.template}-{namespace}"


# Record kind -> destination: one line per kind.
KINDS: dict[str, Kind] = {
    "check": Kind(CHECK_DATASET, CHECK_INDEX_TEMPLATE, "checks", data_stream=True),
    "run": Kind(RUN_DATASET, RUNS_INDEX_TEMPLATE, "runs", data_stream=False),
    "event": Kind(EVENT_DATASET, EVENT_INDEX_TEMPLATE, "events", data_stream=True),
    "afterlife": Kind(AFTERLIFE_DATASET, AFTERLIFE_INDEX_TEMPLATE, "afterlife", data_stream=True),
}
DATA_STREAM_KINDS = tuple(name for name, kind in KINDS.items() if kind.data_stream)


def kind_of(dataset: str | None) -> str | None:
    """The record kind whose documents carry ``event.dataset`` = ``dataset`` (None: no kind)."""
    return next((name for name, kind in KINDS.items() if kind.dataset == dataset), None)


def data_stream(kind: str, namespace: str) -> str | None:
    """``logs-edgewatch.<kind>-<namespace>`` for a data stream kind, None for run summaries
    (and for a kind not in ``KINDS``, which ``bulk.action_header`` refuses)."""
    k = KINDS.get(kind)
    return k.target(namespace) if k is not None and k.data_stream else None


def store_stem(kind: str) -> str:
    """The ndjson store file stem of a record kind (``checks``, ``runs``, ``events``, …)."""
    return KINDS[kind].stem


def afterlife_data_stream(namespace: str) -> str:
    """``logs-edgewatch.afterlife-<namespace>``: checks of retired addresses."""
    return KINDS["afterlife"].target(namespace)
