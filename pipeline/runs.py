"""IP runs: how long an address stays in one resolver's answers, without the original flaw.

The study this project automates measured "how long an IP is used" as the span between first and
last sighting, so an address that left and came back days later looked like one long, stable
run. Here a run ends at the first later *successful* answer from that resolver that lacks the
address, and a return starts a new run with a new id. Failed queries (timeouts, SERVFAIL) are
gaps: counted, but they neither extend nor end a run, because they say nothing about the answer.

The id of a run is derived from its key and its start instant, so rebuilding runs from stored
documents yields the same ids, and open runs are kept in SQLite so a restarted process continues
them instead of starting new ones.

A ``kill -9`` between writing a cycle's documents and committing its state would leave the store
with runs the state never heard of (a second open run for one address at the next cycle). So the
state is committed *before* the write, together with a journal (opaque to this module: the
cycle's run summaries); the journal is cleared once the write succeeded, replayed by the next
process if it did not, and ``undo`` puts the previous state back when a sink refused the cycle.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from pipeline import ids


@dataclass(frozen=True, slots=True)
class RunKey:
    observer: str
    name: str
    rtype: str
    resolver: str
    address: str


@dataclass(frozen=True, slots=True)
class Run:
    key: RunKey
    id: str
    start: datetime
    last_seen: datetime
    checks: int = 1
    gaps: int = 0
    end: datetime | None = None
    resolver_ip: str = ""

    @property
    def open(self) -> bool:
        return self.end is None

    @property
    def version(self) -> int:
        """Grows with every update, so the newest snapshot of a run always wins downstream."""
        return self.checks + self.gaps + (0 if self.open else 1)


@dataclass(frozen=True, slots=True)
class Assignment:
    """The run one answered address belongs to, for its check document."""

    run_id: str
    seq: int
    start: datetime


@dataclass(frozen=True, slots=True)
class Poll:
    """One answer of one resolver for one name and type: what ``RunTracker.observe`` applies.

    ``ok`` False is a failed query (a gap in every open run of the group); ``addresses`` are
    the answered addresses when it succeeded.
    """

    observer: str
    name: str
    rtype: str
    resolver: str
    resolver_ip: str
    at: datetime
    ok: bool
    addresses: Iterable[str] = ()


def _group(key: RunKey) -> tuple[str, str, str, str]:
    return key.observer, key.name, key.rtype, key.resolver


def run_id(key: RunKey, start: datetime) -> str:
    """The run's id: its key and its first sighting (spelled in ``pipeline.ids``)."""
    return ids.run_id(key.observer, key.name, key.rtype, key.resolver, key.address, start)


def _row_run(row: tuple) -> Run:
    """A row of ``open_runs`` (11 columns) or ``retired_runs`` (12: with its end)."""
    key = RunKey(*row[:5])
    return Run(key=key, id=row[5], start=datetime.fromisoformat(row[6]),
               last_seen=datetime.fromisoformat(row[7]), checks=row[8], gaps=row[9],
               resolver_ip=row[10], end=datetime.fromisoformat(row[11]) if len(row) > 11 else None)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS open_runs (
    observer TEXT NOT NULL, name TEXT NOT NULL, rtype TEXT NOT NULL,
    resolver TEXT NOT NULL, address TEXT NOT NULL,
    run_id TEXT NOT NULL, start TEXT NOT NULL, last_seen TEXT NOT NULL,
    checks INTEGER NOT NULL, gaps INTEGER NOT NULL, resolver_ip TEXT NOT NULL,
    PRIMARY KEY (observer, name, rtype, resolver, address)
);
CREATE TABLE IF NOT EXISTS retired_runs (
    observer TEXT NOT NULL, name TEXT NOT NULL, rtype TEXT NOT NULL,
    resolver TEXT NOT NULL, address TEXT NOT NULL,
    run_id TEXT NOT NULL, start TEXT NOT NULL, last_seen TEXT NOT NULL,
    checks INTEGER NOT NULL, gaps INTEGER NOT NULL, resolver_ip TEXT NOT NULL,
    end_at TEXT NOT NULL,
    PRIMARY KEY (observer, name, rtype, resolver, address)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class RunTracker:
    """Assigns runs poll by poll; ``commit`` makes the new state durable.

    The caller commits only after the cycle's documents reached the sinks, so a crash in between
    replays the cycle's state transition rather than losing documents.

    With ``retain_s`` > 0 a run that ends is kept as *retired* (the last ended run of each key)
    until ``expire`` drops it ``retain_s`` after its end or a new run of the key replaces it:
    the afterlife checks are derived from these, so they survive a restart with the state.
    """

    def __init__(self, db_path: Path | None = None, retain_s: float = 0.0) -> None:
        if db_path is not None:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(db_path) if db_path else ":memory:")
        self._db.executescript(_SCHEMA)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        # Open runs grouped by (observer, name, rtype, resolver): one poll touches one group.
        self._open: dict[tuple[str, str, str, str], dict[RunKey, Run]] = {}
        self._retired: dict[RunKey, Run] = {}
        self.retain_s = retain_s
        self._dirty: dict[RunKey, Run | None] = {}
        # The committed run of every key touched since the last commit, for ``undo``.
        self._before: dict[RunKey, Run | None] = {}
        self._undo: dict[RunKey, Run | None] = {}
        self._load()

    def _load(self) -> None:
        self._open.clear()
        self._dirty.clear()
        self._before.clear()
        self._retired.clear()
        for row in self._db.execute("SELECT * FROM open_runs"):
            run = _row_run(row)
            self._open.setdefault(_group(run.key), {})[run.key] = run
        for row in self._db.execute("SELECT * FROM retired_runs"):
            run = _row_run(row)
            self._retired[run.key] = run

    def open_runs(self) -> list[Run]:
        return [run for group in self._open.values() for run in group.values()]

    def retired_runs(self) -> list[Run]:
        """The last ended run of every key that has no open run, kept for ``retain_s``."""
        return list(self._retired.values())

    def expire(self, now: datetime) -> None:
        """Forget retired runs that ended ``retain_s`` or longer before ``now`` (uncommitted)."""
        for key, run in list(self._retired.items()):
            if run.end is not None and (now - run.end).total_seconds() >= self.retain_s:
                self._before.setdefault(key, run)
                del self._retired[key]
                self._dirty[key] = None

    def observe(self, poll: Poll) -> tuple[dict[str, Assignment], list[Run]]:
        """Apply one poll of one resolver; return run assignments and the runs that changed."""
        observer, name, rtype, resolver = poll.observer, poll.name, poll.rtype, poll.resolver
        at = poll.at
        mine = dict(self._open.get((observer, name, rtype, resolver), {}))
        changed: list[Run] = []
        assignments: dict[str, Assignment] = {}
        if not poll.ok:
            for key, run in mine.items():
                changed.append(self._put(key, replace(run, gaps=run.gaps + 1)))
            return assignments, changed
        answered = set(poll.addresses)
        for address in sorted(answered):
            key = RunKey(observer, name, rtype, resolver, address)
            run = mine.get(key)
            if run is None:
                run = Run(key=key, id=run_id(key, at), start=at, last_seen=at,
                          resolver_ip=poll.resolver_ip)
            else:
                run = replace(run, last_seen=at, checks=run.checks + 1)
            changed.append(self._put(key, run))
            assignments[address] = Assignment(run.id, run.checks, run.start)
        for key, run in mine.items():
            if key.address not in answered:
                closed = replace(run, end=at)
                self._before.setdefault(key, run)
                self._open[_group(key)].pop(key)
                self._dirty[key] = closed if self.retain_s > 0 else None
                if self.retain_s > 0:
                    self._retired[key] = closed
                changed.append(closed)
        return assignments, changed

    def _put(self, key: RunKey, run: Run) -> Run:
        group = self._open.setdefault(_group(key), {})
        self._before.setdefault(key, group.get(key) or self._retired.get(key))
        self._retired.pop(key, None)  # a new run of the key ends its retirement
        group[key] = run
        self._dirty[key] = run
        return run

    def commit(self, journal: str | None = None) -> None:
        """Make the new state durable, with ``journal`` in the same transaction if given."""
        with self._db:
            self._write(self._dirty)
            if journal is not None:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('journal', ?)", (journal,))
        self._undo = dict(self._before)
        self._dirty.clear()
        self._before.clear()

    def _write(self, states: dict[RunKey, Run | None]) -> None:
        """Each key's state: None (gone), an open run, or a retired (ended) run."""
        where = "WHERE observer=? AND name=? AND rtype=? AND resolver=? AND address=?"
        for key, run in states.items():
            pk = (key.observer, key.name, key.rtype, key.resolver, key.address)
            for table in ("open_runs", "retired_runs"):
                self._db.execute(f"DELETE FROM {table} {where}", pk)
            if run is None:
                continue
            row = (*pk, run.id, run.start.isoformat(), run.last_seen.isoformat(), run.checks,
                   run.gaps, run.resolver_ip)
            if run.end is None:
                self._db.execute("INSERT INTO open_runs VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)
            else:
                self._db.execute("INSERT INTO retired_runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                                 (*row, run.end.isoformat()))

    def journal(self) -> str | None:
        """The journal of a commit whose documents were not confirmed written, if any."""
        row = self._db.execute("SELECT value FROM meta WHERE key='journal'").fetchone()
        return row[0] if row else None

    def clear_journal(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM meta WHERE key='journal'")

    def undo(self) -> None:
        """Put back the state before the last commit (its documents were refused)."""
        with self._db:
            self._write(self._undo)
            self._db.execute("DELETE FROM meta WHERE key='journal'")
        self._undo = {}
        self._load()

    def rollback(self) -> None:
        """Forget uncommitted transitions (the cycle's documents did not reach the sinks)."""
        self._load()

    def close(self) -> None:
        self._db.close()
