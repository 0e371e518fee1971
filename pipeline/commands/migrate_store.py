"""``edgewatch migrate-store``: rewrite a local store's schema-1 lines as schema 2, in place.

The report and ``edgewatch load`` already read schema-1 lines as schema 2 (``pipeline.schema1``)
and say so; this makes the conversion permanent, so the store reads fast and looks like what
``edgewatch run`` writes now. Each file is rewritten to a temporary file beside it and renamed
over the original only when complete (a crash leaves the old file whole). Lines that are not
schema-1 documents, unreadable ones included, are kept byte for byte. The store's lock is held
throughout, so a running probe and a migration never write the same files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson

from pipeline.commands._common import add_config_argument, load_or_exit
from pipeline.documents import dumps
from pipeline.lock import DirLock, LockError
from pipeline.schema1 import is_schema1, upgrade


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "migrate-store", help="rewrite a local ndjson store's schema-1 documents as schema 2",
        description="Convert the schema-1 lines of an ndjson store (written by an edgewatch "
        "before ECS 9.2.0 naming) to schema 2, in place; other lines are kept as they are. "
        "Exit codes: 0 done (or nothing to do), 1 the store cannot be read, written or locked.",
    )
    add_config_argument(p)
    p.add_argument("--store", type=Path, help="store folder (default: the config's store.dir)")
    p.set_defaults(func=run)


def migrate_file(path: Path) -> int:
    """Rewrite one file; the number of lines converted (0: the file is left untouched)."""
    converted = 0
    out: list[bytes] = []
    with path.open("rb") as fh:
        for line in fh:
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                out.append(line)
                continue
            if isinstance(doc, dict) and is_schema1(doc):
                out.append(dumps(upgrade(doc)) + (b"\n" if line.endswith(b"\n") else b""))
                converted += 1
            else:
                out.append(line)
    if converted:
        tmp = path.with_name(f".{path.name}.migrating")
        with tmp.open("wb") as fh:
            fh.writelines(out)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    return converted


def migrate_store(store: Path) -> tuple[int, int]:
    """(lines converted, files rewritten) for every checks-/runs- file of ``store``."""
    lines = files = 0
    for path in sorted(store.glob("*.ndjson")):
        if path.is_file() and path.name.startswith(("checks-", "runs-")):
            n = migrate_file(path)
            lines += n
            files += bool(n)
    return lines, files


def run(args: argparse.Namespace) -> int:
    store = args.store
    if store is None:
        store = load_or_exit(args.config, writes=False).store_dir
    if not Path(store).is_dir():
        print(f"edgewatch migrate-store: no ndjson store at {store}", file=sys.stderr)
        return 1
    lock = DirLock(Path(store), "store.dir")
    try:
        lock.acquire()
    except LockError as exc:
        print(f"edgewatch migrate-store: {exc}", file=sys.stderr)
        return 1
    try:
        lines, files = migrate_store(Path(store))
    except OSError as exc:
        print(f"edgewatch migrate-store: {store}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        lock.release()
    print(f"{store}: {lines:,} schema-1 lines converted to schema 2 in {files} file(s)")
    return 0
