"""Stores with faults in them, for the reader fault tests.

The report tests' synthetic history (tests/report/report_synth.py: three resolvers, four days,
every figure known) is written as a clean ndjson store; the helpers here damage a copy the ways a
disk, a power loss, a wrong clock or a second writer do, so a test can demand that the damaged
store gives exactly the clean store's figures.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))

from report_synth import History

from pipeline.report import Filters, Report, StoreSource, build_report

SELECTED = Filters(targets=("api.example.test",), observers=("probe-1",))
SELECT_ARGS = ["--target", "api.example.test", "--observer", "probe-1"]


@functools.cache
def history() -> History:
    return History.build()


@functools.cache
def _clean_store(root: str) -> Path:
    path = Path(root) / "clean-store"
    history().write_store(path)
    return path


def clean_store(tmp_root: Path, into: Path) -> Path:
    """A copy of the clean store at ``into`` (the original is written once per tmp root)."""
    shutil.copytree(_clean_store(str(tmp_root)), into)
    return into


def figures(report: Report) -> dict[str, Any]:
    """The report as data minus what may differ between two readings of equal evidence."""
    out = report.to_dict()
    for key in ("generated_at", "source", "data"):
        out.pop(key)
    return out


def report_of(store: Path, filters: Filters = SELECTED, **kw: Any) -> tuple[Report, StoreSource]:
    source = StoreSource(store, **kw)
    return build_report(source, filters), source


def check_files(store: Path) -> list[Path]:
    return sorted(store.glob("checks-*.ndjson"))


def run_files(store: Path) -> list[Path]:
    return sorted(store.glob("runs-*.ndjson"))


def insert_line(path: Path, at: int, line: bytes) -> int:
    """Insert ``line`` so that it becomes line number ``at`` (1-based); returns ``at``."""
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(at - 1, line.rstrip(b"\n") + b"\n")
    path.write_bytes(b"".join(lines))
    return at


def append_raw(path: Path, data: bytes) -> int:
    """Append bytes as they are (no newline added); returns the new last line's number."""
    with path.open("ab") as fh:
        fh.write(data)
    return len(path.read_bytes().splitlines())


def first_doc(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes().splitlines()[0])


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc)


def duplicate_every_line(store: Path) -> int:
    """Write every line of every file twice (a replay, or two writers): returns lines added."""
    added = 0
    for path in sorted(store.glob("*.ndjson")):
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines + lines))
        added += len(lines)
    return added


def edgewatch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command line in a child process (what a user or a cron job sees)."""
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """Exit ``code``, exactly one line on stderr naming ``words``, no traceback."""
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(err) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in err[0], (word, err[0])
