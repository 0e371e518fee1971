"""Deployed lists: every format ``edgewatch allowlist`` writes reads back to the same networks,
bad lines are named ``file:line`` at load, and a changed file is re-read (a broken one is not)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from pipeline.allowlists import DeployedLists, ListError, Matcher, parse_text
from pipeline.config import ConfigError, parse_config
from pipeline.report.allowlist import FORMATS, Allowlist, render_allowlist

MINIMAL = {"targets": [{"name": "api.lab.test"}],
           "resolvers": [{"name": "r", "address": "127.0.0.1"}]}
ENTRIES = [("127.60.0.0/24", 40), ("127.61.0.10/32", 9), ("2001:db8::/48", 3),
           ("2001:db8:1::5/128", 1)]


def _allowlist() -> Allowlist:
    return Allowlist(by="ip", target=0.99, entries=ENTRIES, allowed=1.0, successful_checks=53,
                     distinct=4, start="2026-03-02T00:00:00Z", end="2026-03-03T00:00:00Z",
                     source="store var/data", filters={"targets": ["api.lab.test"]})


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_edgewatch_allowlist_writes_reads_back(fmt: str) -> None:
    text = render_allowlist(_allowlist(), fmt, "edgewatch_allow")
    parsed = parse_text(text, "list")
    assert sorted(map(str, parsed.networks)) == sorted(c for c, _ in ENTRIES)
    assert parsed.format == fmt


def test_plain_addresses_comments_and_one_line_nft_sets() -> None:
    text = "# firewall list\n127.60.0.5\n\n127.61.0.0/25   # eu edges\n::1\n"
    assert [str(n) for n in parse_text(text, "f").networks] == [
        "127.60.0.5/32", "127.61.0.0/25", "::1/128"]
    nft = "table inet fw {\n set a4 { type ipv4_addr; flags interval\n elements = { " \
          "127.60.0.0/24, 127.62.0.1 } }\n}\n"
    assert [str(n) for n in parse_text(nft, "f").networks] == ["127.60.0.0/24", "127.62.0.1/32"]


@pytest.mark.parametrize(("text", "where", "reason"), [
    ("127.60.0.0/24\n127.60.0.x\n", "f:2", "'127.60.0.x' is not an address"),
    ("# head\n\n127.60.0.0/24 127.61.0.0/24\n", "f:3", "one address or network per line"),
    ("create s4 hash:net family inet\nadd s4 10.0.0.0/33\n", "f:2", "'10.0.0.0/33'"),
    ("create s4 hash:net\nflush s4\n", "f:2", "not an ipset restore line"),
    ("table inet t {\n\tset s4 {\n\t\telements = {\n\t\t\t10.0.0.0/8,\n\t\t\tnope\n", "f:5",
     "'nope'"),
    ('{"entries": [{"cidr": "10.0.0.0/8"},\n {"cidr": "300.1.1.1"}]}', "f:2", "'300.1.1.1'"),
    ('{"entries": [\n', "f:2", "not valid JSON"),
])
def test_a_bad_line_is_named_by_file_and_line(text: str, where: str, reason: str) -> None:
    with pytest.raises(ListError) as exc:
        parse_text(text, "f")
    assert str(exc.value).startswith(f"{where}: ") and reason in str(exc.value)


def test_matcher_contains_by_prefix() -> None:
    m = Matcher(parse_text("127.60.0.0/24\n127.61.0.10\n2001:db8::/48\n", "f").networks)
    assert "127.60.0.255" in m and "127.61.0.10" in m and "2001:db8::9" in m
    assert "127.60.1.0" not in m and "127.61.0.11" not in m and "2001:db9::" not in m
    assert "not-an-ip" not in m


def _config(tmp_path: Path, *lists: tuple[str, str]) -> dict:
    entries = []
    for i, (name, text) in enumerate(lists):
        (tmp_path / f"l{i}.txt").write_text(text)
        entries.append({"name": name, "file": f"l{i}.txt"})
    return {**MINIMAL, "allowlists": entries}


def test_config_reads_allowlists_relative_to_the_file(tmp_path: Path) -> None:
    cfg = parse_config(_config(tmp_path, ("fw", "127.60.0.0/24\n")), base=tmp_path, env={})
    assert [(a.name, a.file) for a in cfg.allowlists] == [("fw", tmp_path / "l0.txt")]
    assert parse_config(MINIMAL, env={}).allowlists == ()


@pytest.mark.parametrize(("lists", "key", "reason"), [
    ((("fw", "127.60.0.0/24\nbad\n"),), "allowlists[0].file", "l0.txt:2: 'bad' is not"),
    ((("fw", "10.0.0.0/8\n"), ("fw", "10.0.0.0/8\n")), "allowlists", "must be unique"),
    ((("a b", "10.0.0.0/8\n"),), "allowlists[0].name", "letters, digits"),
])
def test_config_errors_name_the_key_file_and_line(tmp_path: Path, lists, key, reason) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(_config(tmp_path, *lists), base=tmp_path, env={})
    assert len(exc.value.problems) == 1
    assert exc.value.problems[0][0] == key and reason in exc.value.problems[0][1]


def test_config_error_for_a_missing_file_and_an_unknown_key(tmp_path: Path) -> None:
    data = {**MINIMAL, "allowlists": [{"name": "fw", "file": "nope.txt", "path": "x"}]}
    with pytest.raises(ConfigError) as exc:
        parse_config(data, base=tmp_path, env={})
    problems = dict(exc.value.problems)
    assert "cannot read" in problems["allowlists[0].file"]
    assert "unknown key" in problems["allowlists[0].path"]


def _bump(path: Path, text: str) -> None:
    """Rewrite with a later mtime (a same-second rewrite must still count as a change)."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_a_changed_list_is_re_read_and_a_broken_one_keeps_the_old(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "fw.txt"
    path.write_text("127.60.0.0/24\n")
    lists = DeployedLists([("fw", path), ("eu", _write(tmp_path / "eu.txt", "127.61.0.0/24\n"))])
    assert lists.verdict("127.60.0.9") == (["fw"], ["eu"])
    assert lists.refresh() == [] and lists.generation == 0
    _bump(path, "127.62.0.0/24\n")
    assert lists.refresh() == ["fw"] and lists.generation == 1
    assert lists.verdict("127.60.0.9") == ([], ["fw", "eu"])
    assert lists.verdict("127.62.0.1") == (["fw"], ["eu"])
    caplog.set_level(logging.ERROR, logger="pipeline.allowlists.deployed")
    _bump(path, "127.63.0.0/24\n127.63.0.x\n")
    for _ in range(3):
        assert lists.refresh() == []
    assert lists.verdict("127.62.0.1") == (["fw"], ["eu"])  # the old version stays in force
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "NOT used" in errors[0] and "fw.txt:2:" in errors[0]
    _bump(path, "127.63.0.0/24\n127.63.0.x\n")  # touched, same broken bytes: said already
    lists.refresh()
    _bump(path, "127.63.0.0/24\n")
    assert lists.refresh() == ["fw"] and lists.verdict("127.63.0.1") == (["fw"], ["eu"])
    path.unlink()
    lists.refresh()
    assert lists.verdict("127.63.0.1") == (["fw"], ["eu"])
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "cannot read" in errors[1]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_an_override_of_the_list_section_applies_to_every_entry(tmp_path: Path) -> None:
    data = _config(tmp_path, ("fw", "127.60.0.0/24\n"), ("eu", "127.61.0.0/24\n"))
    (tmp_path / "other.txt").write_text("10.0.0.0/8\n")
    cfg = parse_config(data, base=tmp_path, env={"EDGEWATCH_ALLOWLISTS__FILE": '"other.txt"'})
    assert {a.file for a in cfg.allowlists} == {tmp_path / "other.txt"}
    with pytest.raises(ConfigError) as exc:
        parse_config(data, base=tmp_path, env={"EDGEWATCH_ALLOWLISTS__PATH": '"x"'})
    assert exc.value.problems[0][0].startswith("EDGEWATCH_ALLOWLISTS__PATH")


def test_a_file_caught_half_written_is_read_again_next_cycle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.allowlists import deployed

    path = _write(tmp_path / "fw.txt", "127.60.0.0/24\n")
    lists = DeployedLists([("fw", path)])
    real_read = deployed.read_list

    def read_while_a_writer_appends(p: Path):
        result = real_read(p)  # the first half, as a writer in place leaves it for a moment
        with open(p, "a") as fh:
            fh.write("127.61.0.0/24\n")
        return result

    _bump(path, "127.62.0.0/24\n")
    monkeypatch.setattr(deployed, "read_list", read_while_a_writer_appends)
    caplog.set_level(logging.WARNING, logger="pipeline.allowlists.deployed")
    assert lists.refresh() == [] and lists.verdict("127.60.0.1") == (["fw"], [])
    monkeypatch.setattr(deployed, "read_list", real_read)
    assert lists.refresh() == ["fw"]
    assert lists.verdict("127.61.0.1") == (["fw"], []) and lists.verdict("127.62.0.1")[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
