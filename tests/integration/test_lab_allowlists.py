"""Deployed allowlists against the lab: verdicts, events and ``allowlist verify`` equal what the
scenario's ground truth implies, in the ndjson store and in Elasticsearch alike.

Scenario ``allowlists`` (lab/scenarios/allowlists.toml): view na migrates from AS64600's
127.60.0.0/24 to AS64620's 127.62.0.0/24 on 2026-03-03 from 02:30; view eu stays on
127.61.0.10/.11. The daemon watches two lists: ``stale`` (127.60.0.0/24, an nftables set), which
goes stale with the migration, and ``edge``, replaced while the daemon runs (ipset file v1:
127.61.0.0/24; then JSON v2: 127.62.0.10 alone, which drops eu's open runs; then a broken v3
that must not be used; then, for a restart, v2's network as a plain address). 127.62.0.11 (from
04:30 on day 2) is in no version: its run's first check is an event. Real
unbound resolvers, real TLS edges, a real Elasticsearch node; the cycles run in this process so
that the test knows which cycle saw which list version.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from e2e_truth import both_sinks, compare_with_truth, polls_of, timestamp
from elasticsearch import Elasticsearch, helpers
from es_docs import flat

from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.commands._common import make_clock
from pipeline.config import load_config
from pipeline.cycle import CycleRunner
from pipeline.runs import RunTracker
from pipeline.sinks import build_sinks
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration
SPEED = 3600.0  # the scenario's grid is 1 h: one poll per real second
PHASES = (12, 8, 8, 8)  # cycles with edge v1, v2, broken v3 (v2 stays), v2 again after a restart
WINDOW = ("--from", "2026-03-02T00:00:00Z", "--to", "2026-03-05T00:00:00Z")

STALE = "table inet fw {\n\tset api4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n" \
        "\t\telements = { 127.60.0.0/24 }\n\t}\n}\n"
EDGE_V1 = "# lab edge list\ncreate api4 hash:net family inet -exist\n" \
          "add api4 127.61.0.0/24 -exist\n"
EDGE_V2 = json.dumps({"schema": "edgewatch.allowlist/1", "entries": [{"cidr": "127.62.0.10/32"}]})
EDGE_V3_BROKEN = "127.62.0.10\n127.62.0.300\n"
EDGE_V4 = "# v2's network again\n127.62.0.10\n"
COVERS_ALL = "127.60.0.0/24\n127.61.0.0/24\n127.62.0.0/24\n"

lab = lab_fixture("allowlists", speed=SPEED, scope="module")


def _nets(*cidrs: str) -> list[ipaddress.IPv4Network]:
    return [ipaddress.ip_network(c) for c in cidrs]


NETS = {"stale": _nets("127.60.0.0/24"), "v1": _nets("127.61.0.0/24"),
        "v2": _nets("127.62.0.10/32")}


def _in(ip: str, nets: list) -> bool:
    return any(ipaddress.ip_address(ip) in n for n in nets)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


def _write(path: Path, text: str) -> None:
    """Replace like an editor or a deploy tool: a new file renamed over the old one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def _grid_cycles(runner: CycleRunner, n: int) -> list[datetime]:
    clock, interval = runner.clock, runner.config.schedule.interval_s
    starts = []
    for _ in range(n):
        due = clock.next_boundary(interval)
        await asyncio.sleep(max(0.0, clock.real_at(due) - clock.real_at(clock.now())))
        stats = await runner.run_cycle()
        assert stats.delivered
        starts.append(stats.started)
    return starts


async def _measure(config_path: Path, edge: Path, log: Collect) -> list[list[datetime]]:
    phases: list[list[datetime]] = []
    config = load_config(config_path)
    runner = CycleRunner(config, make_clock(config), RunTracker(config.state_dir / "runs.db"),
                         build_sinks(config))
    await runner.open()
    for text, n in zip((None, EDGE_V2, EDGE_V3_BROKEN), PHASES, strict=False):
        if text is not None:
            _write(edge, text)
        phases.append(await _grid_cycles(runner, n))
    await runner.close()
    _write(edge, EDGE_V4)  # a restart needs a valid list (a broken one is refused at start)
    config = load_config(config_path)
    runner = CycleRunner(config, make_clock(config), RunTracker(config.state_dir / "runs.db"),
                         build_sinks(config))
    await runner.open()
    phases.append(await _grid_cycles(runner, PHASES[3]))
    await runner.close()
    return phases


def _edgewatch(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def measured(lab: LabStack, es_url: str, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("allowlists")
    namespace = f"allow{os.getpid()}"
    (work / "stale.nft").write_text(STALE)
    (work / "edge.ipset").write_text(EDGE_V1)
    (work / "all.txt").write_text(COVERS_ALL)
    (work / "broken.txt").write_text("127.60.0.0/24\n# fine so far\n127.61.0/24x\n")
    config = work / "edgewatch.toml"
    config.write_text(lab.config_path.read_text() + both_sinks(work, es_url, namespace) + """
[[allowlists]]
name = "stale"
file = "stale.nft"

[[allowlists]]
name = "edge"
file = "edge.ipset"
""")
    setup = _edgewatch("setup", "--config", str(config))
    assert setup.returncode == 0, setup.stderr
    log = Collect()
    logging.getLogger("pipeline").addHandler(log)
    try:
        phases = asyncio.run(_measure(config, work / "edge.ipset", log))
    finally:
        logging.getLogger("pipeline").removeHandler(log)
    return {"work": work, "config": config, "store": work / "data", "namespace": namespace,
            "phases": phases, "log": log.lines, "setup": setup.stdout}


def _edge_version(ts: float, phases: list[list[datetime]]) -> str:
    return "v1" if ts < phases[1][0].timestamp() else "v2"


def _expected(checks: list[dict], phases: list[list[datetime]]) -> tuple[dict, set]:
    """Per check document id the (allowed, denied) the lists imply, and the events: the first
    check of a run no list allows, or the first after the v1 -> v2 replacement took it out."""
    verdicts = {}
    for d in checks:
        if "destination.ip" in d:
            ip, version = d["destination.ip"], _edge_version(timestamp(d["@timestamp"]), phases)
            has = {"stale": _in(ip, NETS["stale"]), "edge": _in(ip, NETS[version])}
            verdicts[d["_id"]] = ([n for n in ("stale", "edge") if has[n]],
                                  [n for n in ("stale", "edge") if not has[n]])
    replaced_at = phases[1][0].timestamp()
    events = set()
    for (resolver, target), polls in polls_of(checks).items():
        previous: frozenset[str] = frozenset()
        for t, err, addrs in polls:
            if err is not None:
                continue
            for ip in addrs:
                denied = not _in(ip, NETS["stale"]) and not _in(
                    ip, NETS["v1" if t < replaced_at else "v2"])
                newly = (abs(t - replaced_at) < 1200 and not _in(ip, NETS["stale"])
                         and _in(ip, NETS["v1"]))
                if denied and (ip not in previous or newly):
                    events.add((resolver, target, ip, round(t, 3)))
            previous = addrs
    return verdicts, events


def _scan(es: Elasticsearch, index: str) -> list[dict]:
    return [{"_id": h["_id"], **flat(h["_source"])}
            for h in helpers.scan(es, index=index, query={"query": {"match_all": {}}})]


def _event_keys(events: list[dict]) -> set:
    return {(e["edgewatch.resolver.name"], e["dns.question.name"], e["destination.ip"],
             round(timestamp(e["@timestamp"]), 3)) for e in events}


def test_store_verdicts_and_events_equal_the_ground_truth(measured, lab: LabStack) -> None:
    checks = list(read_store(measured["store"], "checks"))
    compare_with_truth(lab, checks, read_store(measured["store"], "runs"))
    verdicts, events = _expected(checks, measured["phases"])
    assert len(verdicts) > 100
    for d in checks:
        assert (d["edgewatch.allowlist.allowed"], d["edgewatch.allowlist.denied"]) == \
            verdicts[d["_id"]], d
    stored = list(read_store(measured["store"], "events"))
    assert _event_keys(stored) == events
    assert len(stored) == len(events) == len({e["_id"] for e in stored})
    # the replacement took both of eu's open runs out of every list: one event each; and the
    # run of 127.62.0.11, in no list ever, has its event at its first check
    ips = [e[2] for e in events]
    assert ips.count("127.61.0.10") == ips.count("127.61.0.11") == 1
    assert ips.count("127.62.0.11") == 1
    first_11 = min(timestamp(d["@timestamp"]) for d in checks
                   if d.get("destination.ip") == "127.62.0.11")
    assert any(e[2] == "127.62.0.11" and e[3] == round(first_11, 3) for e in events)
    assert all(e["event.action"] == "allowlist-miss" and e["edgewatch.allowlist.allowed"] == []
               for e in stored)
    warnings = [m for level, m in measured["log"] if m.startswith("allowlist miss: ")]
    assert len(warnings) == len(events)
    refused = [m for level, m in measured["log"] if level == logging.ERROR and "NOT used" in m]
    assert len(refused) == 1 and "edge.ipset:2:" in refused[0]  # once, not once per cycle


def test_elasticsearch_holds_the_same_verdicts_and_events(measured, es: Elasticsearch) -> None:
    ns = measured["namespace"]
    es.indices.refresh(index=f"logs-edgewatch.check-{ns},logs-edgewatch.event-{ns}")
    in_es = {d["_id"]: d for d in _scan(es, f"logs-edgewatch.check-{ns}")}
    in_store = {d["_id"]: d for d in read_store(measured["store"], "checks")}
    assert in_es.keys() == in_store.keys()
    for doc_id, doc in in_store.items():
        for key in ("edgewatch.allowlist.allowed", "edgewatch.allowlist.denied"):
            assert in_es[doc_id].get(key) == doc.get(key)
    events = _scan(es, f"logs-edgewatch.event-{ns}")
    assert {e["_id"] for e in events} == {e["_id"] for e in read_store(measured["store"],
                                                                         "events")}
    # the query a Kibana rule would run: checks no list allows
    none = es.count(index=f"logs-edgewatch.check-{ns}", query={"bool": {
        "filter": [{"exists": {"field": "edgewatch.allowlist.denied"}}],
        "must_not": [{"exists": {"field": "edgewatch.allowlist.allowed"}}]}})["count"]
    assert none == sum(1 for d in in_store.values() if d.get("edgewatch.allowlist.denied")
                       and not d["edgewatch.allowlist.allowed"]) > 0
    assert "logs-edgewatch.event" in measured["setup"]


def _verify(measured, source: str, list_file: str, *extra: str) -> subprocess.CompletedProcess:
    where = (["--store", str(measured["store"])] if source == "store" else
             ["--config", str(measured["config"]), "--namespace", measured["namespace"]])
    return _edgewatch("allowlist", "verify", "--list", str(measured["work"] / list_file),
                      *where, *WINDOW, "--no-progress", *extra)


@pytest.mark.parametrize("source", ["store", "es"])
def test_verify_coverage_and_exit_codes(measured, source: str) -> None:
    checks = [d for d in read_store(measured["store"], "checks") if "destination.ip" in d
              and d["event.outcome"] == "success"]
    ok = len(checks)
    full = _verify(measured, source, "all.txt", "--format", "json")
    assert full.returncode == 0, full.stderr
    doc = json.loads(full.stdout)
    assert (doc["ok"], doc["checks"], doc["allowed"], doc["missed"]) == (True, ok, ok, [])

    stale = _verify(measured, source, "stale.nft", "--format", "json")
    assert stale.returncode == 1, stale.stderr
    doc = json.loads(stale.stdout)
    allowed = sum(1 for d in checks if _in(d["destination.ip"], NETS["stale"]))
    assert (doc["ok"], doc["checks"], doc["allowed"]) == (False, ok, allowed)
    first: dict[str, float] = {}
    for d in checks:
        if not _in(d["destination.ip"], NETS["stale"]):
            t = timestamp(d["@timestamp"])
            first[d["destination.ip"]] = min(first.get(d["destination.ip"], t), t)
    assert {m["ip"]: int(timestamp(m["first"])) for m in doc["missed"]} == {
        ip: int(t) for ip, t in first.items()}
    assert {"127.62.0.10", "127.61.0.10"} <= set(first)  # the migration and the other view
    by_group = {(g["target"], g["resolver"]): (g["checks"], g["allowed"]) for g in doc["groups"]}
    assert by_group[("acme-v02.api.lab.test", "lab-eu")][1] == 0
    new = next(m for m in doc["missed"] if m["ip"] == "127.62.0.10")
    assert (new["prefix"], new["asn"], new["via"]) == (
        "127.62.0.0/24", 64620, ["acme-v02.api.lab.test via lab-na"])
    # the stale list went stale on 2026-03-03 (day 1 of the window): not before
    assert datetime.fromtimestamp(first["127.62.0.10"], UTC).date().isoformat() == "2026-03-03"
    threshold = f"{allowed / ok - 1e-9:.12f}"
    assert _verify(measured, source, "stale.nft", "--min-coverage", threshold).returncode == 0
    text = _verify(measured, source, "stale.nft")
    assert text.returncode == 1 and "BELOW the minimum" in text.stdout
    assert "127.62.0.10  since 2026-03-03T" in text.stdout

    broken = _verify(measured, source, "broken.txt")
    assert broken.returncode == 2
    assert broken.stderr.strip().splitlines() == [
        f"edgewatch allowlist verify: {measured['work'] / 'broken.txt'}:3: '127.61.0/24x' is "
        "not an address or a network such as 192.0.2.0/24"]


def test_verify_reads_the_same_from_the_store_and_the_cluster(measured) -> None:
    a, b = (json.loads(_verify(measured, s, "stale.nft", "--format", "json").stdout)
            for s in ("store", "es"))
    a.pop("source"), b.pop("source")
    assert a == b


def test_a_broken_list_stops_the_daemon_at_start(measured, tmp_path: Path) -> None:
    config = tmp_path / "edgewatch.toml"
    work = measured["work"]
    text = measured["config"].read_text().replace(
        'file = "edge.ipset"', f'file = "{work / "broken.txt"}"').replace(
        'file = "stale.nft"', f'file = "{work / "stale.nft"}"')
    config.write_text(text.replace(str(measured["work"] / "state"), str(tmp_path / "state")))
    proc = _edgewatch("run", "--config", str(config), "--cycles", "1")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"edgewatch: {config}: allowlists[1].file: {measured['work'] / 'broken.txt'}:3: "
        "'127.61.0/24x' is not an address or a network such as 192.0.2.0/24"]


def test_report_sections_per_list_from_either_source(measured, es: Elasticsearch) -> None:
    from pipeline.allowlists import load_version
    from pipeline.report import ElasticsearchSource, Filters, Options, StoreSource, build_report
    from pipeline.report.html import render_html
    from pipeline.report.text import render_text

    work = measured["work"]
    lists = (load_version("stale", work / "stale.nft"), load_version("all", work / "all.txt"))
    filters = Filters(start=datetime(2026, 3, 2, tzinfo=UTC), end=datetime(2026, 3, 5, tzinfo=UTC))
    options = Options(allowlists=lists)
    from_store = build_report(StoreSource(measured["store"]), filters, options)
    from_es = build_report(ElasticsearchSource(es, namespace=measured["namespace"]), filters,
                           options)
    assert [c.name for c in from_store.allowlists] == ["stale", "all"]
    assert from_store.to_dict()["allowlists"] == from_es.to_dict()["allowlists"]

    checks = [d for d in read_store(measured["store"], "checks") if "destination.ip" in d]
    by_day: dict[str, list[int]] = {}
    for d in checks:
        day = by_day.setdefault(d["@timestamp"][:10], [0, 0])
        day[0] += 1
        day[1] += _in(d["destination.ip"], NETS["stale"])
    stale, every = from_store.allowlists
    assert [(d.start[:10], d.checks, d.allowed) for d in stale.days] == [
        (day, n, a) for day, (n, a) in sorted(by_day.items())]
    assert all(d.coverage == 1.0 for d in every.days) and every.missed == []
    # the known day: the list covers 2026-03-02 entirely except the other view, not 03-03
    day2 = next(d for d in stale.days if d.start.startswith("2026-03-03"))
    day1 = next(d for d in stale.days if d.start.startswith("2026-03-02"))
    assert day2.coverage < day1.coverage
    text, html = render_text(from_store), render_html(from_store)
    assert "Deployed allowlist stale" in text and "127.62.0.10" in text
    assert "Deployed allowlists: share of each day" in html and html.count("<svg") >= 6

    proc = _edgewatch("report", "--config", str(measured["config"]), "--namespace",
                      measured["namespace"], "--list", str(work / "all.txt"), "--format",
                      "json", *WINDOW, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    names = [c["name"] for c in json.loads(proc.stdout)["allowlists"]]
    assert names == ["stale", "edge", "all.txt"]


def test_load_carries_the_events_into_another_namespace(measured, es: Elasticsearch,
                                                        tmp_path: Path) -> None:
    work, ns = measured["work"], measured["namespace"] + "l"
    text = measured["config"].read_text()
    for old, new in ((f'namespace = "{measured["namespace"]}"', f'namespace = "{ns}"'),
                     (str(work / "spool"), str(tmp_path / "spool")),
                     (str(work / "dead-letter"), str(tmp_path / "dead-letter")),
                     (str(work / "state"), str(tmp_path / "state")),
                     ('file = "stale.nft"', f'file = "{work / "stale.nft"}"'),
                     ('file = "edge.ipset"', f'file = "{work / "edge.ipset"}"')):
        text = text.replace(old, new)
    config = tmp_path / "edgewatch.toml"
    config.write_text(text)
    for args in (("setup",), ("load", "--quiet", "--store", str(measured["store"]))):
        proc = _edgewatch(*args, "--config", str(config))
        assert proc.returncode == 0, proc.stderr
    es.indices.refresh(index=f"logs-edgewatch.event-{ns}")
    loaded = {e["_id"] for e in _scan(es, f"logs-edgewatch.event-{ns}")}
    assert loaded == {e["_id"] for e in read_store(measured["store"], "events")} != set()
    es.options(ignore_status=(400, 404)).indices.delete(index=f"*-{ns}", expand_wildcards="all")
