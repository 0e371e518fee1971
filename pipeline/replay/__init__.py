"""``edgewatch replay``: the recorded answers walked through what else could have been done.

Pure functions over the per-query rows of ``pipeline.report.answers`` (from the ndjson store or
Elasticsearch alike), one module per question:

* ``series`` groups the rows into cycles per target and record type;
* ``fqdn`` replays a firewall FQDN object (``[[firewall_models]]``) cycle by cycle;
* ``choice`` replays the trivial model for every pair of resolvers (which one should the
  firewall ask?) and the daily Jaccard overlap of their answers;
* the blocks section (/24, announced prefix, whole ASN) is the report's own
  (``pipeline.report.blocks``), shown beside these;
* ``ecs`` says what asking with an EDNS Client Subnet changed;
* ``build`` composes them per target; ``text`` renders them.

Everything here is a lower bound on trouble: rotation faster than the cadence is invisible.
"""
