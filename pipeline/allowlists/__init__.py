"""Deployed allowlists: the lists in the firewall, read from their files and watched.

``parse`` reads every format a list comes in (no pipeline imports, so the configuration can
validate with it); ``deployed`` keeps the version in force and re-reads a file that changed.
"""

from pipeline.allowlists.deployed import DeployedLists, ListVersion, load_version
from pipeline.allowlists.parse import ListError, Matcher, ParsedList, network, parse_text, read_list

__all__ = ["DeployedLists", "ListError", "ListVersion", "Matcher", "ParsedList", "load_version",
           "network", "parse_text", "read_list"]
