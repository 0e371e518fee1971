"""The allowlists in force: read at start, re-read before a cycle when a file changed.

A list in the firewall is edited while the probe runs. Before each cycle every file's
(mtime, size) is compared with the version in force, and on a difference its bytes; a changed
file is parsed again. A broken new version (a typo, a half-written file) never replaces a good
one: the old list stays in force and one ERROR line says so, once per broken version, not once
per cycle. A file that becomes unreadable is treated the same way.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.allowlists.parse import ListError, Matcher, Network, read_list

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListVersion:
    """One parsed version of one list file."""

    name: str
    path: Path
    networks: tuple[Network, ...]
    digest: str  # sha256 of the bytes, short: which version a log line speaks of
    stat: tuple[int, int]  # (mtime_ns, size) when it was read

    def __post_init__(self) -> None:
        object.__setattr__(self, "matcher", Matcher(self.networks))

    def allows(self, address: str) -> bool:
        return address in self.matcher  # type: ignore[attr-defined]


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class ListChanging(ListError):
    """The file changed while it was read (a writer is at work): try again next cycle."""


def load_version(name: str, path: Path) -> ListVersion:
    """Read and parse ``path``; ListError (``file:line: reason``) when it cannot be used.

    The file's (mtime, size) must be the same before and after the read: a file caught half
    written by a tool that rewrites in place raises ListChanging instead of yielding a list
    shortened to its first lines (writing a new file and renaming it over the old one avoids
    the question)."""
    stat = _stat(path)
    parsed, raw = read_list(path)
    if _stat(path) != stat:
        raise ListChanging(f"{path}: changed while it was read")
    return ListVersion(name, Path(path), parsed.networks,
                       hashlib.sha256(raw).hexdigest()[:12], stat or (0, 0))


class DeployedLists:
    """Every configured list by name, in config order, with the version in force."""

    def __init__(self, specs: Iterable[tuple[str, Path]]) -> None:
        """Load every list; raises ListError for the first that cannot be used (at start a
        broken list is a configuration error, not something to run without)."""
        self.versions: dict[str, ListVersion] = {
            name: load_version(name, path) for name, path in specs}
        # name -> (stat, error) of the refused version: said once, not re-read until it changes
        self._refused: dict[str, tuple[tuple[int, int] | None, str]] = {}
        self.generation = 0  # grows whenever a list in force changes
        # the versions the latest refresh replaced: who was allowed just before it
        self.previous: dict[str, ListVersion] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.versions)

    def __bool__(self) -> bool:
        return bool(self.versions)

    def verdict(self, address: str) -> tuple[list[str], list[str]]:
        """(names of the lists that allow ``address``, names of those that do not)."""
        allowed, denied = [], []
        for name, version in self.versions.items():
            (allowed if version.allows(address) else denied).append(name)
        return allowed, denied

    def allowed_by_none(self, address: str) -> bool:
        return not any(v.allows(address) for v in self.versions.values())

    def newly_denied(self, address: str) -> bool:
        """No list allows ``address`` now, and one did before the latest refresh replaced it."""
        if not self.previous or not self.allowed_by_none(address):
            return False
        return any({**self.versions, **self.previous}[name].allows(address)
                   for name in self.versions)

    def refresh(self) -> list[str]:
        """Re-read the files that changed on disk; the names of the lists now replaced."""
        replaced = []
        self.previous = {}
        for name, current in list(self.versions.items()):
            stat = _stat(current.path)
            if stat == current.stat or stat == self._refused.get(name, (0, ""))[0]:
                continue
            try:
                new = load_version(name, current.path)
            except ListChanging:
                continue  # still being written: the next cycle reads the finished file
            except ListError as exc:
                self._refuse(name, stat, str(exc), current)
                continue
            if new.digest == current.digest:  # touched, same bytes: remember the new stat
                self.versions[name] = new
                continue
            self.previous[name] = current
            self.versions[name] = new
            self._refused.pop(name, None)
            self.generation += 1
            replaced.append(name)
            log.warning("allowlist %s re-read from %s: %d networks (was %d), version %s",
                        name, current.path, len(new.networks), len(current.networks),
                        new.digest)
        return replaced

    def _refuse(self, name: str, stat: tuple[int, int] | None, why: str,
                current: ListVersion) -> None:
        said = self._refused.get(name, (None, ""))[1] == why
        self._refused[name] = (stat, why)
        if said:
            return  # once per broken version (a touch of the same broken file says nothing)
        log.error("allowlist %s: the new version is NOT used, the previous one (%d networks, "
                  "version %s) stays in force: %s", name, len(current.networks),
                  current.digest, why)
