"""The schema-1 → schema-2 field renames, in one place, for the Kibana tests.

Schema 2 (docs/DOCUMENTS.md) moved every custom field under ``edgewatch.*`` and took
Heartbeat's names for the timings. A saved object still naming a schema-1 field charts nothing
on schema-2 data, silently: Kibana shows an empty panel, not an error. ``test_kibana_objects``
scans every saved object for the names of ``pipeline.schema1.RENAMED``, the table the readers
use to convert old documents, so there is one list to keep.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pipeline.schema1 import RENAMED

SCHEMA = 2

# Every schema-1 name that schema 2 no longer has (either kind of document): the one table is
# the one the readers convert old documents with.
RETIRED: frozenset[str] = frozenset(RENAMED)

# Values that changed meaning: tls.version is "1.3" (with tls.version_protocol "tls"), no longer
# "TLSv1.3"; a saved object matching on the old spelling would match nothing.
RETIRED_VALUES = re.compile(r"(?i)\b(?:TLS|SSL)v\d")

# A field name is a dotted run of [\w@]; a retired name counts only as a whole name, so
# "run.start" does not match inside "edgewatch.run.start" nor "destination.prefix" inside
# "destination.prefix24".
_NAME_BOUNDARY = r"(?<![\w.@]){}(?![\w.])"
_RETIRED_NAME = re.compile("|".join(
    _NAME_BOUNDARY.format(re.escape(n)) for n in sorted(RETIRED, key=len, reverse=True)))


def strings_in(value: Any) -> Iterator[str]:
    """Every string in a saved object: values *and* keys (a range query names its field as a
    key), descending into the JSON held in string attributes (visState, the Vega spec inside it,
    searchSourceJSON, fieldFormatMap, panelsJSON)."""
    if isinstance(value, str):
        yield value
        text = value.strip()
        if text[:1] in "{[":
            try:
                inner = json.loads(text)
            except ValueError:
                return
            yield from strings_in(inner)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def retired_names_in(value: Any) -> set[str]:
    """The schema-1 names (and old tls.version values) anywhere in ``value``."""
    found: set[str] = set()
    for text in strings_in(value):
        found.update(m.group(0) for m in _RETIRED_NAME.finditer(text))
        found.update(m.group(0) for m in RETIRED_VALUES.finditer(text))
    return found
