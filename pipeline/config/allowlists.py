"""The ``[[allowlists]]`` section: the deployed lists each check is judged against.

Each entry names a list and its file. The file is parsed here, at start, so a bad line is a
configuration error naming ``file:line`` before anything runs; the cycle re-reads it later
(``pipeline.allowlists.deployed``) when it changes on disk.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pipeline.allowlists.parse import ListError, read_list
from pipeline.config.lists import list_entries
from pipeline.config.model import Allowlist
from pipeline.config.reader import Reader

_KEYS = {"name", "file"}
# a name lands in keyword fields and Prometheus label values: keep it a plain word
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def parse_allowlists(r: Reader, parsed: Mapping[str, Any]) -> dict[str, Any]:
    """``allowlists``: optional; names unique, every file readable and valid."""
    out = list_entries(r, "allowlists", _entry, required=False,
                       example=" name = ..., file = ...")
    names = [a.name for a in out]
    if len(set(names)) != len(names):
        r.fail("allowlists", "allowlist names must be unique")
    return {"allowlists": tuple(out)}


def _entry(r: Reader, t: Mapping[str, Any], i: int) -> Allowlist | None:
    p = f"allowlists[{i}]."
    r.unknown(t, _KEYS, p)
    name = r.get(t, "name", p, str)
    if name is None:
        r.fail(f"{p}name", "required: a short word such as firewall-prod")
    elif not _NAME.fullmatch(name):
        r.fail(f"{p}name", f"{name!r} must be 1-64 letters, digits, '_', '.' or '-'")
        name = None
    file = r.get(t, "file", p, str)
    if file is None:
        r.fail(f"{p}file", "required: the list file (CIDR lines, nft set, ipset or json)")
        return None
    path = r.path(file)
    assert path is not None
    try:
        read_list(path)
    except ListError as exc:
        r.fail(f"{p}file", str(exc))
        return None
    return Allowlist(name=name, file=path) if name else None
