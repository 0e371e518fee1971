"""The published lists between two refreshes: computed, compared, applied, remembered.

One ``Publisher`` owns the current ``Snapshot`` (replaced whole, so the HTTP threads always read
one consistent state) and the state file that lets a restart keep the previous list (the
floor and the outage rule need it) and its ``Last-Modified``. Every change of a list is logged
once, with what was added and removed and why.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from pipeline.config.publish import Publish
from pipeline.publish import outputs
from pipeline.publish.rule import Entry, ListRule, Sighting, TargetList, compute
from pipeline.report.filters import Filters

log = logging.getLogger("edgewatch.publish")
STATE_FILE = "publish.json"


@dataclass(frozen=True)
class Document:
    """One fetchable list: its body and the validators a conditional GET compares."""

    body: bytes
    etag: str
    modified: float  # real epoch seconds when this body was first published
    evidence_time: str | None = None  # RFC 3339, the newest verified check behind it


@dataclass(frozen=True)
class Snapshot:
    lists: dict[str, TargetList] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)  # URL path -> document
    read_error: str | None = None
    refreshed: float = 0.0  # real time of the last refresh attempt


def rule_of(p: Publish) -> ListRule:
    return ListRule(by=p.by, hold_s=p.hold_s, window_s=p.window_s,
                    max_entries=p.max_entries, floor=p.floor)


def paths_of(target: str) -> dict[str, int | None]:
    """The URL paths of one target's lists and the family each holds (None: both)."""
    return {f"/lists/{target}.txt": None, f"/lists/{target}/v4.txt": 4,
            f"/lists/{target}/v6.txt": 6}


class Publisher:
    def __init__(self, publish: Publish, targets: Iterable[str], state_dir: Path,
                 read: Callable[[Filters], Iterable[Sighting]],
                 now: Callable[[], datetime]) -> None:
        self.publish = publish
        self.targets = tuple(publish.targets or targets)
        self.rule = rule_of(publish)
        self.state_path = Path(state_dir) / STATE_FILE
        self.read = read
        self.now = now
        self._lock = threading.Lock()
        self._applied = False  # the first refresh applies even an unchanged list (a reboot
        # may have emptied the nft set; a file may have been removed)
        self.snapshot = self._restore()

    # -- one refresh ----------------------------------------------------------------------

    def refresh(self) -> Snapshot:
        """Read the evidence, recompute every list, apply what changed, swap the snapshot."""
        now = self.now()
        back = timedelta(seconds=self.rule.window_s + self.rule.hold_s)
        with self._lock:
            previous = self.snapshot
            try:
                rows = list(self.read(Filters(start=now - back, targets=self.targets)))
            except Exception as exc:
                detail = str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
                why = f"evidence unreadable: {detail}"
                if previous.read_error != why:
                    log.error("%s; the published lists stay as they are", why)
                self.snapshot = Snapshot(previous.lists, previous.documents, why, time.time())
                return self.snapshot
            lists = {t: compute(t, rows, self.rule, now, previous.lists.get(t))
                     for t in self.targets}
            for t in self.targets:
                _log_change(previous.lists.get(t), lists[t], self.rule)
            self.snapshot = Snapshot(lists, _documents(lists, previous.documents), None,
                                     time.time())
            if _changed(previous.lists, lists) or not self._applied:
                self._apply(lists)
                self._save()
                self._applied = True
            return self.snapshot

    def _apply(self, lists: dict[str, TargetList]) -> None:
        p = self.publish
        if p.directory is not None:
            outputs.write_files(p.directory, lists)
        if p.nft_set is not None:
            try:
                outputs.apply_nft(p.nft_command, outputs.nft_script(
                    p.nft_table, p.nft_set, lists.values()))
            except outputs.NftError as exc:
                log.error("nftables set %s %s4/6 not updated: %s", p.nft_table, p.nft_set, exc)

    # -- health ---------------------------------------------------------------------------

    def health(self) -> tuple[bool, list[str]]:
        """(healthy, one line per target): unhealthy when the evidence is stale, unreadable,
        or a list is held back by the floor or the outage rule."""
        snap, now = self.snapshot, self.now()
        lines, ok = [], True
        if snap.read_error:
            ok = False
            lines.append(snap.read_error)
        for target in self.targets:
            tl = snap.lists.get(target)
            if tl is None or tl.evidence_time is None:
                ok = False
                lines.append(f"{target}: no successful, verified check yet")
                continue
            age = (now - tl.evidence_time).total_seconds()
            stale = age > self.publish.stale_after_s
            ok = ok and not stale and tl.held is None
            state = "STALE" if stale else "held" if tl.held else "ok"
            lines.append(f"{target}: {state}, {len(tl.entries)} entries, newest verified check "
                         f"{age:.0f}s ago (stale after {self.publish.stale_after_s:g}s)"
                         + (f"; {tl.held}" if tl.held else ""))
        return ok, lines

    # -- state ----------------------------------------------------------------------------

    def _save(self) -> None:
        data = {"lists": {t: _list_json(tl) for t, tl in self.snapshot.lists.items()},
                "modified": {p: d.modified for p, d in self.snapshot.documents.items()}}
        outputs.write_atomically(self.state_path, orjson.dumps(data))

    def _empty(self) -> Snapshot:
        """Every configured list, with no evidence yet (served as 503, never as empty)."""
        lists = {t: TargetList(t, (), None, "no successful, verified check yet")
                 for t in self.targets}
        return Snapshot(lists, _documents(lists, {}))

    def _restore(self) -> Snapshot:
        try:
            data = orjson.loads(self.state_path.read_bytes())
            lists = {t: _list_from_json(t, v) for t, v in data["lists"].items()
                     if t in self.targets}
            modified = data.get("modified", {})
        except FileNotFoundError:
            return self._empty()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("%s unreadable (%s): starting without a previous list", self.state_path,
                      exc)
            return self._empty()
        docs = {p: replace(d, modified=float(modified.get(p, d.modified)))
                for p, d in _documents(lists, {}).items()}
        return Snapshot(lists, docs)


def _documents(lists: dict[str, TargetList], old: dict[str, Document]) -> dict[str, Document]:
    """Bodies and validators; an unchanged body keeps its ``Last-Modified``."""
    out = {}
    for target, tl in lists.items():
        for path, family in paths_of(target).items():
            data = outputs.body(tl.cidrs(family))
            etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
            prev = old.get(path)
            evidence = _iso(tl.evidence_time, "milliseconds") if tl.evidence_time else None
            modified = prev.modified if prev is not None and prev.etag == etag else time.time()
            out[path] = Document(data, etag, modified, evidence)
    return out


def _changed(old: dict[str, TargetList], new: dict[str, TargetList]) -> bool:
    return any(set(old[t].cidrs()) != set(tl.cidrs()) if t in old else True
               for t, tl in new.items())


def _log_change(old: TargetList | None, new: TargetList, rule: ListRule) -> None:
    before = {e.cidr: e for e in (old.entries if old else ())}
    after = {e.cidr: e for e in new.entries}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    if added or removed:
        parts = [f"added {c} (verified check at {_iso(after[c].last)})" for c in added]
        parts += [f"removed {c} (last verified check {_iso(before[c].last)}, more than "
                  f"{rule.hold_s:g}s before the newest)" for c in removed]
        log.warning("list %s: %d entries (+%d -%d): %s", new.target, len(new.entries),
                    len(added), len(removed), "; ".join(parts))
    if new.held and (old is None or old.held != new.held):
        log.warning("list %s: %s", new.target, new.held)
    elif old is not None and old.held and not new.held:
        log.warning("list %s: follows the evidence again", new.target)


def _iso(ts: datetime, timespec: str = "seconds") -> str:
    return ts.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def _list_json(tl: TargetList) -> dict:
    return {"entries": [[e.cidr, e.checks, _iso(e.last, "microseconds")] for e in tl.entries],
            "evidence_time": _iso(tl.evidence_time, "microseconds") if tl.evidence_time else None,
            "capped": tl.capped}


def _list_from_json(target: str, v: dict) -> TargetList:
    def ts(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    return TargetList(target, tuple(Entry(c, int(n), ts(last)) for c, n, last in v["entries"]),
                      ts(v["evidence_time"]) if v.get("evidence_time") else None, None,
                      int(v.get("capped", 0)))
