"""Prometheus metrics of ``edgewatch run``: the probe's health where monitoring already looks.

Off unless ``[metrics] listen = "ADDRESS:PORT"`` is configured. The metrics are bookkeeping
around the cycle, never part of it: a ``MetricsTap`` sits first among the sinks and counts the
check documents each cycle writes (``figures``), the run command tells ``Metrics`` when a cycle
finished or a slot was skipped, and the Elasticsearch sink's spool and counters are read when
Prometheus scrapes. Nothing here can fail a cycle or slow it: counting a cycle's documents is
one pass over dictionaries already built, and the HTTP server (the official
``prometheus_client``) answers from its own thread. Every metric: docs/METRICS.md.

Modules: ``daemon`` (what ``edgewatch run`` holds), ``figures`` (a cycle's documents counted),
``state`` (every figure, published per cycle under one lock), ``spool_age`` (the oldest
undelivered document), ``collector`` (the families at scrape time), ``server`` (the endpoint),
``off`` (the same hooks doing nothing, when metrics are not configured). Imports: ``config``,
``documents`` and the sinks' shape only; only ``commands._run_cycles`` imports this package, and
prometheus_client is loaded only when metrics are configured.
"""
