"""`edgewatch report`, `allowlist` and `load` as a user runs them, on bad data and bad arguments.

Every refusal is one line on stderr with a non-zero exit, never a traceback; a damaged store is
read with one warning per damaged file; `load` puts exactly the valid, distinct documents into a
real Elasticsearch node (tests/conftest.py), and the cluster's report then equals the store's.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from faults_readers_helpers import (
    SELECT_ARGS,
    SELECTED,
    assert_one_line_error,
    check_files,
    clean_store,
    dumps,
    duplicate_every_line,
    edgewatch,
    figures,
    first_doc,
    history,
    insert_line,
    report_of,
    run_files,
)

from pipeline.commands.setup import setup
from pipeline.config import ElasticsearchSettings
from pipeline.es import names
from pipeline.report import ElasticsearchSource, build_report


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return clean_store(tmp_path_factory.getbasetemp(), tmp_path / "store")


def _damage(store: Path) -> dict[Path, list[int]]:
    """Corrupt lines in two check files and one run file; returns the bad line numbers."""
    a, b = check_files(store)[0], check_files(store)[2]
    runs = run_files(store)[0]
    doc = first_doc(a)
    bad = {
        a: [insert_line(a, 3, b'{"@timestamp": "2026-03-02T00:'),
            insert_line(a, 10, dumps({**doc, "_id": "bad-ip", "destination.ip": "not-an-ip"}))],
        b: [insert_line(b, 7, dumps({**doc, "_id": "bad-ts", "@timestamp": "03/04/2026"}))],
        runs: [insert_line(runs, 2, dumps({**first_doc(runs), "edgewatch.run.open": "yes"}))],
    }
    with b.open("ab") as fh:  # and a power loss in the middle of the last line
        fh.write(b'{"_id": "half", "@timestamp": "2026-03-0')
    bad[b].append(len(b.read_bytes().splitlines()))
    return bad


# -- bad arguments: one line, exit 2, before any work ---------------------------------------


@pytest.mark.parametrize("command", ["report", "allowlist"])
def test_from_after_to_is_refused(store: Path, command: str) -> None:
    proc = edgewatch(command, "--store", str(store), "--from", "2026-03-05", "--to",
                     "2026-03-01")
    assert_one_line_error(proc, 2, f"edgewatch {command}:", "--from", "is not before --to")
    assert proc.stdout == ""


@pytest.mark.parametrize("command", ["report", "allowlist"])
def test_output_into_a_missing_directory_is_refused_before_reading(tmp_path: Path,
                                                                   command: str) -> None:
    # the store does not exist either: the -o check comes first (exit 2, not the read's 1)
    target = tmp_path / "no" / "such" / "dir" / "out.txt"
    proc = edgewatch(command, "--store", str(tmp_path / "nostore"), "-o", str(target))
    assert_one_line_error(proc, 2, f"-o {target}", "does not exist")
    assert not target.parent.exists()


def test_output_onto_a_directory_or_below_a_file_is_refused(store: Path, tmp_path: Path) -> None:
    proc = edgewatch("report", "--store", str(store), "-o", str(tmp_path))
    assert_one_line_error(proc, 2, "is a directory")
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    proc = edgewatch("allowlist", "--store", str(store), "-o", str(a_file / "list.txt"))
    assert_one_line_error(proc, 2, "does not exist")


def test_output_onto_an_unwritable_place_is_refused(store: Path) -> None:
    """sysfs refuses new files even to root (for whom every permission test passes)."""
    proc = edgewatch("report", "--store", str(store), "-o", "/sys/edgewatch-report.txt")
    assert_one_line_error(proc, 2, "-o /sys/edgewatch-report.txt: not writable")


@pytest.mark.parametrize("fmt", ["nft", "ipset"])
def test_a_set_name_with_firewall_syntax_is_refused(store: Path, tmp_path: Path,
                                                    fmt: str) -> None:
    out = tmp_path / "list.nft"
    proc = edgewatch("allowlist", "--store", str(store), "--format", fmt, "--set-name",
                     "x { }; flush ruleset; set y", "-o", str(out))
    assert_one_line_error(proc, 2, "--set-name", "is not allowed")
    assert not out.exists() and proc.stdout == ""


def test_an_empty_store_says_so_and_fails(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = edgewatch("report", "--store", str(tmp_path / "empty"))
    assert_one_line_error(proc, 1, "no check documents", "nothing to report")
    assert proc.stdout == ""
    assert "exit status" in edgewatch("report", "--help").stdout.lower()


def test_a_namespace_without_data_says_so_and_fails(es_url: str) -> None:
    proc = edgewatch("report", "--es-url", es_url, "--namespace", "nosuch", "--no-progress")
    assert_one_line_error(proc, 1, "no check documents", "logs-edgewatch.check-nosuch")
    assert "Window None" not in proc.stdout + proc.stderr


# -- a damaged store: read with warnings, or refused with --strict --------------------------


def test_report_on_a_damaged_store_warns_once_per_file(store: Path) -> None:
    clean = edgewatch("report", "--store", str(store), *SELECT_ARGS, "--format", "json")
    bad = _damage(store)
    proc = edgewatch("report", "--store", str(store), *SELECT_ARGS, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == len(bad)
    for line, (path, numbers) in zip(warnings, sorted(bad.items()), strict=True):
        assert line.startswith(f"edgewatch report: warning: {path}: skipped {len(numbers)} of")
        assert f"line {numbers[0]}:" in line
    assert "Traceback" not in proc.stderr
    import json

    got, want = json.loads(proc.stdout), json.loads(clean.stdout)
    assert got["data"]["skipped_lines"] == sum(len(n) for n in bad.values())
    for doc in (got, want):
        for key in ("generated_at", "data"):
            doc.pop(key)
    assert got == want


@pytest.mark.parametrize("command", ["report", "allowlist"])
def test_strict_turns_a_bad_line_into_one_error(store: Path, command: str) -> None:
    bad = _damage(store)
    first = min(bad)
    proc = edgewatch(command, "--store", str(store), "--strict", "--no-progress")
    assert_one_line_error(proc, 1, str(first), f"line {bad[first][0]}")
    assert proc.stdout == ""


def test_text_report_says_what_was_skipped_and_ignored(store: Path) -> None:
    _damage(store)
    doc = first_doc(check_files(store)[1])
    (store / "checks-2031-01-01.ndjson").write_bytes(
        dumps({**doc, "_id": "from-2031", "@timestamp": "2031-01-01T00:00:00.000Z"}) + b"\n")
    proc = edgewatch("report", "--store", str(store), *SELECT_ARGS)
    assert proc.returncode == 0, proc.stderr
    assert "Data: ignored 1 check document(s)" in proc.stdout
    assert "Data: skipped 5 unreadable store line(s)" in proc.stdout
    assert "1642" not in proc.stdout and "Window 2026-03-02T00:00:00Z → 2026-03-05" in proc.stdout
    html = edgewatch("report", "--store", str(store), *SELECT_ARGS, "--format", "html")
    assert "Data: ignored 1 check document(s)" in html.stdout
    allow = edgewatch("allowlist", "--store", str(store), *SELECT_ARGS)
    assert allow.returncode == 0, allow.stderr
    assert "# evidence window: 2026-03-02T00:00:00Z -> 2026-03-05" in allow.stdout
    assert "# data: ignored 1 check document(s)" in allow.stdout
    # the allowlist reads no run summaries: only the four bad check lines are met
    assert "# data: skipped 4 unreadable store line(s)" in allow.stdout


# -- load: exactly the valid, distinct documents, idempotent --------------------------------


def _load_config(tmp_path: Path, es_url: str, namespace: str, store: Path) -> Path:
    config = tmp_path / "load.toml"
    config.write_text(
        f'[elasticsearch]\nurl = "{es_url}"\nnamespace = "{namespace}"\n'
        f'spool_dir = "{tmp_path / "spool"}"\ndead_letter_dir = "{tmp_path / "dead"}"\n'
        f'[store]\ndir = "{store}"\n'
        '[[targets]]\nname = "api.example.test"\n'
        '[[resolvers]]\nname = "alpha"\naddress = "127.0.0.11"\n')
    return config


def _count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index, ignore_unavailable=True)
    return es.count(index=index, ignore_unavailable=True, allow_no_indices=True)["count"]


@pytest.fixture
def namespace(es: Elasticsearch, es_url: str, tmp_path: Path):
    ns = f"readers{uuid.uuid4().hex[:8]}"
    setup(ElasticsearchSettings(url=es_url, namespace=ns, spool_dir=tmp_path / "s0",
                                dead_letter_dir=tmp_path / "d0"), out=io.StringIO())
    yield ns
    es.options(ignore_status=404).indices.delete(index=names.runs_index(ns))


def test_load_sends_exactly_the_valid_distinct_documents_once(
    es: Elasticsearch, es_url: str, namespace: str, store: Path, tmp_path: Path,
) -> None:
    clean_report, _ = report_of(store)
    checks_ids = {d["_id"] for d in history().checks}
    runs_ids = set(history().runs)
    duplicate_every_line(store)
    bad = _damage(store)
    # and a wrong clock: a valid check and a valid run summary dated 2031, which the cluster
    # stores like any other and both reports must leave out alike
    check, run = first_doc(check_files(store)[1]), first_doc(run_files(store)[-1])
    (store / "checks-2031-01-01.ndjson").write_bytes(
        dumps({**check, "_id": "from-2031", "@timestamp": "2031-01-01T00:00:00.000Z"}) + b"\n")
    insert_line(run_files(store)[-1], 1, dumps({
        **run, "_id": "run-2031", "edgewatch.run.id": "run-2031", "edgewatch.run.open": True,
        "edgewatch.run.last_seen": "2031-01-01T00:00:00.000Z", "edgewatch.run.duration.s": 10**8}))
    checks_ids.add("from-2031")
    runs_ids.add("run-2031")
    config = _load_config(tmp_path, es_url, namespace, store)

    first = edgewatch("load", "--config", str(config))
    assert first.returncode == 0, first.stderr
    warnings = [x for x in first.stderr.splitlines() if "warning" in x]
    assert len(warnings) == len(bad) and "Traceback" not in first.stderr
    assert "\r" not in first.stderr  # not a terminal: whole lines only
    skipped = sum(len(n) for n in bad.values())
    assert "0 refused" in first.stdout and f"{skipped} unusable lines skipped" in first.stdout
    checks_index, runs_index = names.check_data_stream(namespace), names.runs_index(namespace)
    assert _count(es, checks_index) == len(checks_ids)
    assert _count(es, runs_index) == len(runs_ids)

    second = edgewatch("load", "--config", str(config), "--quiet")
    assert second.returncode == 0, second.stderr
    # checks are all "already there"; run summaries of an equal version are rewritten in place
    stored_again = int(second.stdout.split(": ", 1)[1].split(" stored")[0].replace(",", ""))
    assert stored_again <= len(runs_ids)
    assert _count(es, checks_index) == len(checks_ids)
    assert _count(es, runs_index) == len(runs_ids)

    from_es = build_report(ElasticsearchSource(es, namespace=namespace), SELECTED)
    from_store, _ = report_of(store)
    assert figures(from_es) == figures(from_store) == figures(clean_report)
    assert from_store.data.duplicate_lines > 0 and from_es.data.duplicate_lines == 0
    assert (from_es.data.ignored_checks, from_es.data.ignored_runs) == (1, 1)
    assert (from_store.data.ignored_checks, from_store.data.ignored_runs) == (1, 1)


def test_load_strict_sends_nothing_from_a_damaged_store(
    es: Elasticsearch, es_url: str, namespace: str, store: Path, tmp_path: Path,
) -> None:
    bad = _damage(store)
    config = _load_config(tmp_path, es_url, namespace, store)
    proc = edgewatch("load", "--config", str(config), "--strict")
    first = min(bad)
    assert_one_line_error(proc, 1, str(first), f"line {bad[first][0]}", "nothing sent")
    assert _count(es, names.check_data_stream(namespace)) == 0
    assert _count(es, names.runs_index(namespace)) == 0
