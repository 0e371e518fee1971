"""A living allowlist: the list the evidence supports, served to firewalls as the CDN moves.

``rule`` decides what is listed (pure), ``evidence`` reads it from a store, ``publisher`` keeps
the published lists and applies changes (file by rename, nftables set), ``http`` serves them.
"""
