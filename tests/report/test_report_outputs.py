"""The renderers, the allowlist and the command line, on the synthetic history."""

from __future__ import annotations

import io
import ipaddress
import json
import re
from pathlib import Path

import pytest
from report_synth import History
from report_truth import Truth

from pipeline.cli import main
from pipeline.report import (
    Filters,
    StoreSource,
    build_report,
    render_html,
    render_json,
    render_text,
)
from pipeline.report.allowlist import build_allowlist, render_allowlist
from pipeline.report.es_source import ElasticsearchSource
from pipeline.report.progress import Progress

SELECTED = Filters(targets=("api.example.test",), observers=("probe-1",))
SELECT_ARGS = ["--target", "api.example.test", "--observer", "probe-1"]


def test_store_keeps_the_highest_run_version(store_dir: Path, history: History) -> None:
    lines = [json.loads(line) for path in sorted(store_dir.glob("runs-*.ndjson"))
             for line in path.read_text().splitlines()]
    stale = lines[-1]  # the replayed version-1 snapshot written last
    final = history.runs[stale["edgewatch.run.id"]]
    assert stale["edgewatch.run.version"] == 1 < final.version
    got = {r.run_id: r for r in StoreSource(store_dir).run_rows(Filters())}
    assert len(got) == len(history.runs)
    assert got[final.id].duration_s == final.doc()["edgewatch.run.duration.s"]
    assert got[final.id].open == final.open


def test_text_report_shows_the_verdict_and_every_section(store_dir: Path) -> None:
    text = render_text(build_report(StoreSource(store_dir), SELECTED))
    assert text.index("Verdict") < text.index("Resolvers")
    for title in ("Failures by kind", "Coverage", "Decay", "Most stable addresses",
                  "Handshake timings", "Edge hostnames", "Unique addresses per day"):
        assert title in text
    assert re.search(r"^beta\s+384\s", text, re.M)


def test_json_report_has_the_documented_schema(store_dir: Path) -> None:
    doc = json.loads(render_json(build_report(StoreSource(store_dir), SELECTED)))
    assert list(doc)[:3] == ["schema", "generated_at", "source"]
    assert doc["schema"] == "edgewatch.report/1"
    assert set(doc) == {"schema", "generated_at", "source", "filters", "window", "overall",
                        "resolvers", "coverage", "decay", "verdict", "data", "blocks",
                        "targets", "replay", "replay_note", "allowlists", "afterlife",
                        "observers"}
    # build_by_target fills them
    assert doc["targets"] == [] and doc["replay"] is None and doc["replay_note"] is None
    assert doc["afterlife"] == []  # a store without afterlife documents
    assert doc["data"] == {"plausible_from": "2020-01-01T00:00:00Z",
                           "plausible_to": doc["data"]["plausible_to"], "ignored_checks": 0,
                           "ignored_runs": 0, "skipped_lines": 0, "duplicate_lines": 0}
    assert {c["by"] for c in doc["coverage"]} == {"ip", "prefix24", "prefix"}
    assert "ranked" not in doc["coverage"][0]
    assert set(doc["overall"]) == {"name", "documents", "successful", "queries", "networks",
                                   "run_length", "failures", "timings", "stable",
                                   "daily_addresses"}


def test_html_report_is_one_self_contained_file_with_all_charts(store_dir: Path) -> None:
    html = render_html(build_report(StoreSource(store_dir), SELECTED))
    assert html.startswith("<!DOCTYPE html>")
    # nothing fetched: no scripts, stylesheets, images or fonts from anywhere
    assert not re.search(r"<script|<link|<img|@import|url\(", html)
    assert set(re.findall(r"https?://[^'\" ]+", html)) == {"http://www.w3.org/2000/svg"}
    titles = re.findall(r"<svg [^>]*aria-label='([^']+)'", html)
    assert len(titles) == 6
    for word in ("Run length", "Unique addresses", "Coverage", "Decay: a list built from day 1",
                 "Decay by address", "Failures by resolver and kind"):
        assert any(word in t for t in titles), word
    # one survival step line per resolver, plus the overall dashed one
    survival = html[html.index("aria-label='Run length"):].split("</svg>")[0]
    lines = re.findall(r"<path d='([^']+)'[^>]*><title>([^<]+)</title>", survival)
    assert [name for _, name in lines] == ["alpha", "beta", "gamma", "all resolvers"]
    assert all("H" in d and "V" in d for d, _ in lines)  # drawn as steps


@pytest.mark.parametrize("by", ["ip", "prefix24", "prefix"])
def test_allowlist_reaches_the_coverage_with_the_fewest_entries(source, history: History,
                                                                 by: str) -> None:
    truth = Truth(history)
    al = build_allowlist(source, SELECTED, 0.99, by)
    k, share = truth.minimal_cover(by, 0.99)
    assert len(al.entries) == k
    assert al.allowed == pytest.approx(share)
    assert al.successful_checks == sum(truth.ok_by(by).values())
    counts = truth.ok_by(by)
    for cidr, n in al.entries:
        key = cidr.removesuffix("/32") if by == "ip" else cidr
        assert counts[key] == n


def test_allowlist_formats(store_dir: Path) -> None:
    al = build_allowlist(StoreSource(store_dir), SELECTED, 0.999, "prefix24")
    nets = {str(ipaddress.ip_network(c)) for c, _ in al.entries}
    cidr = render_allowlist(al, "cidr")
    header = [line for line in cidr.splitlines() if line.startswith("#")]
    assert "evidence window: 2026-03-02T00:00:00Z -> 2026-03-05T23:45:00Z" in header[1]
    assert "would have allowed 100.00%" in header[0]
    assert {line for line in cidr.splitlines() if not line.startswith("#")} == nets
    nft = render_allowlist(al, "nft")
    assert "table inet edgewatch {" in nft and "type ipv4_addr" in nft
    assert "flags interval" in nft and "ipv6" not in nft
    assert all(n in nft for n in nets)
    ipset = render_allowlist(al, "ipset")
    adds = [line.split()[2] for line in ipset.splitlines() if line.startswith("add ")]
    assert set(adds) == nets
    assert "create edgewatch-allow4 hash:net family inet -exist" in ipset
    doc = json.loads(render_allowlist(al, "json"))
    assert doc["schema"] == "edgewatch.allowlist/1"
    assert doc["coverage_target"] == 0.999
    assert {e["cidr"] for e in doc["entries"]} == nets
    assert sum(e["checks"] for e in doc["entries"]) == doc["successful_checks"]


def test_cli_report_and_allowlist_from_the_store(store_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.json"
    assert main(["report", "--store", str(store_dir), *SELECT_ARGS, "--format", "json",
                 "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["overall"]["networks"]["addresses"] == 10
    assert main(["report", "--store", str(store_dir), *SELECT_ARGS, "--format", "html",
                 "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    # the report's six charts, then the target's replay sections (resolver choice, blocks)
    assert page.count("<svg") == 8 and "resolver choice" in page
    capsys.readouterr()
    assert main(["allowlist", "--store", str(store_dir), *SELECT_ARGS, "--coverage", "99%",
                 "--by", "prefix", "--format", "cidr"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [x for x in lines if not x.startswith("#")] == [
        "192.0.2.0/24", "198.51.100.0/23", "203.0.113.0/24"]


def test_cli_reads_elasticsearch_with_config_and_overrides(
    es_url: str, report_namespace: str, store_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    config = tmp_path / "edgewatch.toml"
    config.write_text(
        f'[elasticsearch]\nurl = "http://127.0.0.1:1"\nnamespace = "{report_namespace}"\n'
        '[[targets]]\nname = "api.example.test"\n'
        '[[resolvers]]\nname = "alpha"\naddress = "127.0.0.11"\n')
    args = [*SELECT_ARGS, "--format", "json", "--no-progress"]
    # the config names an unreachable cluster: --es-url overrides it
    assert main(["report", "-c", str(config), "--es-url", es_url, "--namespace",
                 report_namespace, *args]) == 0
    from_es = json.loads(capsys.readouterr().out)
    assert main(["report", "--store", str(store_dir), *args]) == 0
    from_store = json.loads(capsys.readouterr().out)
    for d in (from_es, from_store):
        d.pop("source")
        d.pop("generated_at")
    assert from_es == from_store
    # and without the override the unreachable cluster is an error, not a traceback
    assert main(["report", "-c", str(config), *args]) == 1
    assert "failed" in capsys.readouterr().err


def test_cli_missing_store_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", "--store", str(tmp_path / "nope")]) == 1
    assert "no ndjson store" in capsys.readouterr().err


def test_long_reads_show_progress_on_stderr(es, report_namespace: str) -> None:
    stream = io.StringIO()
    source = ElasticsearchSource(es, namespace=report_namespace, page_size=50,
                                 progress=Progress(stream=stream, min_interval_s=0.0))
    report = build_report(source, SELECTED)
    lines = stream.getvalue().splitlines()
    # read one resolver at a time (es_source._by_resolver), each part counted
    assert any(re.match(r"addresses by day, resolver \d+ of \d+: [\d,]+ groups$", line)
               for line in lines)
    assert any(line.startswith("run lengths: ") and line.endswith(" groups") for line in lines)
    # the counter is the number of groups read so far, page by page; runs arrive grouped by
    # rounded length, so there are at most as many groups as runs
    groups = [int(line.split()[2].replace(",", "")) for line in lines
              if line.startswith("run lengths: ")]
    assert groups == sorted(groups) and 0 < groups[-1] <= report.overall.run_length.runs
