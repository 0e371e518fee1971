"""Where documents go: the Elasticsearch bulk sink, the ndjson store, stdout."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.sinks.base import Sink


def build_sinks(config: Config) -> list[Sink]:
    sinks: list[Sink] = []
    for name in config.sinks:
        if name == "ndjson":
            from pipeline.sinks.ndjson import NdjsonSink

            sinks.append(NdjsonSink(config.store_dir))
        elif name == "stdout":
            from pipeline.sinks.stdout import StdoutSink

            sinks.append(StdoutSink())
        elif name == "elasticsearch":
            from pipeline.sinks.elasticsearch import ElasticsearchSink

            sinks.append(ElasticsearchSink.from_config(config))
    return sinks
