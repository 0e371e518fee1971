"""Everything edgewatch knows about talking to Elasticsearch, shared by setup, the sink and report.

``client`` builds clients from ``ElasticsearchSettings`` (the one place a secret is revealed),
``cluster`` finds out what the cluster is and can do, ``names`` spells every index and template
name, ``templates`` turns the JSON in ``mappings/`` into request bodies, ``installer`` puts them
on a cluster idempotently, ``bulk`` decides what a bulk item result means, and ``privileges``
spells the least privileges of a probe and of setup.
"""
