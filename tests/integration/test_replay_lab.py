"""`edgewatch replay` against the lab's `replay` scenario: every figure equals what the ground
truth implies, from the ndjson store and from a real Elasticsearch node alike.

The expectations are computed here from ``lab.truth`` with a reference formulation of each model
(a brute-force allowed set per cycle), independently of ``pipeline.replay``; only the recorded
cycle instants are taken from the store, as in the end-to-end truth tests.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from e2e_truth import both_sinks

from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.config import load_config
from pipeline.replay.build import replay_source
from pipeline.report.es_source import ElasticsearchSource
from pipeline.report.filters import Filters
from pipeline.report.store_source import StoreSource
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration
CYCLES = 16
INTERVAL = 900.0
ACME, POOL = "acme-v02.api.lab.test", "pool.api.lab.test"
MODELS = """
[[firewall_models]]
name = "lag-15m"
resolver = "lab-fw"
refresh = "15m"

[[firewall_models]]
name = "alpha-cap2"
resolver = "lab-alpha"
refresh = "15m"
max_addresses = 2

[[firewall_models]]
name = "alpha-hold-30m"
resolver = "lab-alpha"
refresh = "15m"
keep_previous = "30m"

[[firewall_models]]
name = "alpha-ttl-1h"
resolver = "lab-alpha"
refresh = "ttl"
min_refresh = "1h"

[[firewall_models]]
name = "living-30m"
kind = "living"
refresh = "15m"
hold = "30m"
floor = 0.0
"""

lab = lab_fixture("replay", speed=900.0, scope="module")


def _edgewatch(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def measured(lab: LabStack, es_url: str, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("replay")
    namespace = f"replay{os.getpid()}"
    config = work / "edgewatch.toml"
    config.write_text(lab.config_path.read_text() + both_sinks(work, es_url, namespace) + MODELS)
    _edgewatch("setup", "--config", str(config))
    _edgewatch("run", "--config", str(config), "--cycles", str(CYCLES), "--quiet")
    return {"config": config, "store": work / "data", "namespace": namespace}


@pytest.fixture(params=["store", "elasticsearch"])
def source(request, measured, es):
    if request.param == "store":
        return StoreSource(measured["store"])
    ns = measured["namespace"]
    es.indices.refresh(index=f"logs-edgewatch.check-{ns}")
    return ElasticsearchSource(es, namespace=ns)


# -- the reference: recorded cycle instants + the truth's answers ------------------------------


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def cycles_of(store: Path) -> dict[str, list[tuple[float, dict[str, float]]]]:
    """Per target: (cycle instant, {resolver: query instant}) in time order."""
    per: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for doc in read_store(store, "checks"):
        key = (doc["dns.question.name"], doc["edgewatch.cycle.id"])
        t = _ts(doc["@timestamp"])
        name = doc["edgewatch.resolver.name"]
        per[key][name] = min(t, per[key].get(name, t))
    out: dict[str, list] = defaultdict(list)
    for (target, _), times in per.items():
        out[target].append((min(times.values()), times))
    for v in out.values():
        v.sort(key=lambda c: c[0])
    return out


def reference(lab: LabStack, target: str, cycles, fw: str, refresh_s: float, cap: int,
              hold_s: float, client: str) -> dict[str, int]:
    """Brute force: allowed(k) = F(last refresh) ∪ every earlier refresh's F(j) whose successor
    refresh lies less than hold_s before cycle k."""
    truth = lab.truth
    refreshes: list[tuple[float, frozenset[str]]] = []
    got = {"checks": 0, "partly": 0, "fully": 0, "blocked": 0, "longest": 0}
    run = 0
    for ct, times in cycles:
        if not refreshes or ct - refreshes[-1][0] >= refresh_s - INTERVAL / 2:
            refreshes.append((ct, truth.answer(fw, target, times[fw]).addresses))
        last = refreshes[-1][1]
        allowed = set(last)
        for j in range(len(refreshes) - 1):
            if ct - refreshes[j + 1][0] < hold_s:
                allowed |= refreshes[j][1]
        answer = truth.answer(client, target, times[client]).addresses
        if cap and len(last) > cap:
            # any `cap` of F's addresses: exact only where the client holds all of F's
            assert last <= answer and len(answer) > cap
            allowed = set(list(last)[:cap])
        out = answer - allowed
        got["checks"] += 1
        got["fully"] += bool(out) and out == answer
        got["partly"] += bool(out) and out != answer
        run = run + 1 if out else 0
        got["longest"] = max(got["longest"], run)
    got["blocked"] = got["partly"] + got["fully"]
    return got


def _models(measured, kind: str = "fqdn") -> list:
    return [m for m in load_config(measured["config"]).firewall_models if m.kind == kind]


def living_reference(lab: LabStack, target: str, cycles, hold_s: float,
                     client: str) -> dict[str, int]:
    """Brute force of the living list fetched every cycle: at cycle k the addresses verified
    (per the truth's edge behaviour) in an earlier cycle within hold of the newest such
    check; cycles before the first evidence are not counted."""
    truth = lab.truth
    seen: dict[str, float] = {}  # address -> newest verified check before this cycle
    got = {"checks": 0, "partly": 0, "fully": 0}
    for _, times in cycles:
        if seen:
            newest = max(seen.values())
            allowed = {a for a, t in seen.items() if newest - t <= hold_s}
            answer = truth.answer(client, target, times[client]).addresses
            if answer:
                out = answer - allowed
                got["checks"] += 1
                got["fully"] += bool(out) and out == answer
                got["partly"] += bool(out) and out != answer
        for name, t in times.items():
            for a in truth.answer(name, target, t).addresses:
                if truth.edge_outcome(a) is None:
                    seen[a] = max(seen.get(a, t), t)
    return got


def test_the_living_list_equals_its_rule_over_the_ground_truth(lab: LabStack, measured,
                                                              source) -> None:
    cycles = cycles_of(measured["store"])
    (model,) = _models(measured, "living")
    replay = replay_source(source, Filters(), [model])
    blocked = 0
    for target in (ACME, POOL):
        (figures,) = replay.target(target).models
        for c in figures.clients:
            want = living_reference(lab, target, cycles[target], model.hold_s, c.client)
            assert {"checks": c.checks, "partly": c.partly, "fully": c.fully} == want, (
                target, c.client)
            blocked += want["partly"] + want["fully"]
    assert blocked > 0  # the hourly rotation: a new pair blocks once, before its first fetch


def test_every_model_equals_the_ground_truth(lab: LabStack, measured, source) -> None:
    cycles = cycles_of(measured["store"])
    assert len(cycles[ACME]) >= CYCLES - 2  # overruns may coalesce a cycle
    # The cadence is inferred from the recorded cycle times, and at 900x one real millisecond
    # of scheduling drift is 0.9 scenario seconds: the inference lands on 900 s give or take
    # that (901 on a loaded machine). The exact figures below use the configured interval, as
    # `edgewatch replay --interval` does.
    inferred = replay_source(source, Filters(), []).interval_s
    assert inferred is not None and abs(inferred - INTERVAL) <= 3, inferred
    replay = replay_source(source, Filters(), _models(measured), INTERVAL)
    assert replay.interval_s == INTERVAL
    assert "lower bound" in replay.note
    names = sorted(r.name for r in lab.scenario.resolvers)
    seen_blocked = defaultdict(int)
    for model in _models(measured):
        refresh = model.refresh_s if model.refresh_s is not None else max(
            lab.truth.cached_ttl(ACME), model.min_refresh_s)
        for target in (ACME, POOL):
            figures = next(m for m in replay.target(target).models if m.name == model.name)
            assert [c.client for c in figures.clients] == names
            for c in figures.clients:
                want = reference(lab, target, cycles[target], model.resolver, refresh,
                                 model.max_addresses, model.keep_previous_s, c.client)
                got = {"checks": c.checks, "partly": c.partly, "fully": c.fully,
                       "blocked": c.blocked_intervals,
                       "longest": round(c.longest_blocked_s / INTERVAL)}
                assert got == want, (model.name, target, c.client)
                assert c.blocked_s == want["blocked"] * INTERVAL
                seen_blocked[(model.name, target)] += want["blocked"]
    # the scenario exercised each effect
    assert seen_blocked[("lag-15m", ACME)] > 0  # a lagging firewall view
    assert seen_blocked[("alpha-cap2", POOL)] == len(names) * len(cycles[POOL])  # over the cap
    assert seen_blocked[("alpha-hold-30m", ACME)] < seen_blocked[("lag-15m", ACME)]


def test_resolver_choice_and_jaccard_equal_the_ground_truth(lab: LabStack, measured,
                                                            source) -> None:
    cycles = cycles_of(measured["store"])[ACME]
    replay = replay_source(source, Filters(), [])
    choice = replay.target(ACME).choice
    names = sorted(r.name for r in lab.scenario.resolvers)
    assert choice["resolvers"] == names
    totals = {}
    for fw in names:
        blocked = checks = fully = 0
        for client in names:
            if client == fw:
                continue
            want = reference(lab, ACME, cycles, fw, 0.0, 0, 0.0, client)
            cell = next(x for x in choice["cells"]
                        if x["firewall"] == fw and x["client"] == client)
            assert (cell["checks"], cell["partly"], cell["fully"]) == (
                want["checks"], want["partly"], want["fully"]), (fw, client)
            blocked += want["blocked"]
            checks += want["checks"]
            fully += want["fully"]
        totals[fw] = (blocked / checks, fully / checks, fw)
    best = min(totals.values())
    assert (choice["best"], choice["best_share"]) == (best[2], best[0])
    assert choice["best"] != "lab-fw"  # the lagging view is never the answer
    # one scenario day: Jaccard of the day's address sets, pair by pair
    day: dict[str, set[str]] = defaultdict(set)
    for _, times in cycles:
        for name, t in times.items():
            day[name] |= lab.truth.answer(name, ACME, t).addresses
    for j in choice["jaccard"]:
        a, b = day[j["a"]], day[j["b"]]
        assert j["daily"][0] == len(a & b) / len(a | b), (j["a"], j["b"])


def test_ecs_evidence_equals_the_ground_truth(lab: LabStack, measured, source) -> None:
    cycles = cycles_of(measured["store"])
    scoped = defaultdict(int)
    for doc in read_store(measured["store"], "checks"):
        if (doc.get("edgewatch.dns.ecs.scope_prefix") or 0) > 0:
            scoped[(doc["dns.question.name"], doc["edgewatch.resolver.name"],
                    doc["edgewatch.check.id"])] = 1
    replay = replay_source(source, Filters(), [])
    for target in (ACME, POOL):
        rows = {e["resolver"]: e for e in replay.target(target).ecs}
        # honoured by pdns-recursor (provider alpha), ignored by unbound (provider beta)
        assert {k: v["compared_with"] for k, v in rows.items()} == {
            "lab-alpha-ecs": "lab-alpha", "lab-beta-ecs": "lab-beta"}
        for name, row in rows.items():
            differ = sum(lab.truth.answer(name, target, ts[name]).addresses
                         != lab.truth.answer(row["compared_with"], target,
                                             ts[row["compared_with"]]).addresses
                         for _, ts in cycles[target])
            assert (row["answers"], row["both"], row["differ"]) == (
                len(cycles[target]), len(cycles[target]), differ), (target, name)
            assert row["scoped"] == sum(1 for (t, r, _) in scoped if (t, r) == (target, name))
        assert rows["lab-beta-ecs"]["differ"] == 0
    assert {e["resolver"]: e["differ_share"] for e in replay.target(ACME).ecs} == {
        "lab-alpha-ecs": 1.0, "lab-beta-ecs": 0.0}


def test_the_same_replay_from_the_store_and_from_elasticsearch(measured, es) -> None:
    ns = measured["namespace"]
    es.indices.refresh(index=f"logs-edgewatch.check-{ns}")
    models = _models(measured)
    a = replay_source(StoreSource(measured["store"]), Filters(), models).to_dict()
    b = replay_source(ElasticsearchSource(es, namespace=ns), Filters(), models).to_dict()
    for d in (a, b):
        d.pop("generated_at")
        d.pop("source")
    assert a == b


def test_cli_blocks_and_cost_per_target(lab: LabStack, measured) -> None:
    out = _edgewatch("replay", "--config", str(measured["config"]), "--store",
                     str(measured["store"]), "--format", "json", "--no-progress").stdout
    replay = orjson.loads(out)
    assert replay["schema"] == "edgewatch.replay/1"
    assert [t["target"] for t in replay["targets"]] == [ACME, POOL]
    nets = lab.scenario.networks
    for t in replay["targets"]:
        used = {a for _, ts in cycles_of(measured["store"])[t["target"]]
                for name, at in ts.items() for a in lab.truth.answer(name, t["target"],
                                                                      at).addresses}
        asns = {n.asn for n in nets if any(_in(a, n) for a in used)}
        space = sum(n.prefix.num_addresses for n in nets if n.asn in asns)
        by = {(b["by"], b["target"]): b for b in t["blocks"]}
        whole = by[("asn", None)]
        assert (whole["blocks"], whole["opened"], whole["used"]) == (len(asns), space,
                                                                       len(used))
        for b in t["blocks"]:
            if b["by"] == "prefix24":
                assert b["opened"] == 256 * b["blocks"]
    assert [m["name"] for m in replay["targets"][0]["models"]] == [
        m.name for m in load_config(measured["config"]).firewall_models]


def _in(address: str, network) -> bool:
    import ipaddress

    return ipaddress.ip_address(address) in network.prefix


def test_cli_help_and_errors(measured) -> None:
    helptext = _edgewatch("replay", "--help").stdout
    assert "[[firewall_models]]" in helptext and "max_addresses" in helptext
    bad = _edgewatch("replay", "--config", str(measured["config"]), "--store",
                     str(measured["store"]), "--model", "nope", check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "nope" in bad.stderr
    text = _edgewatch("replay", "--config", str(measured["config"]), "--store",
                      str(measured["store"]), "--model", "lag-15m", "--no-progress").stdout
    assert "lower bound" in text and "lag-15m" in text and "alpha-cap2" not in text


def test_models_replay_unchanged_by_dataclass_copy(measured) -> None:
    """The config's models are plain frozen data (a later model kind adds fields, not code)."""
    for m in _models(measured):
        assert dataclasses.replace(m) == m


def test_report_per_target_first_with_the_replay_sections(measured, tmp_path: Path) -> None:
    args = ["report", "--config", str(measured["config"]), "--store", str(measured["store"]),
            "--no-progress"]
    doc = orjson.loads(_edgewatch(*args, "--format", "json").stdout)
    assert [t["filters"]["targets"] for t in doc["targets"]] == [[ACME], [POOL]]
    want = replay_source(StoreSource(measured["store"]), Filters(),
                         load_config(measured["config"]).firewall_models)

    def json_like(c) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v
                for k, v in dataclasses.asdict(c).items()}
    for one in doc["targets"]:
        name = one["replay"]["target"]
        assert one["verdict"]["headline"] and one["blocks"] == one["replay"]["blocks"]
        assert [m["clients"] for m in one["replay"]["models"]] == [
            [json_like(c) for c in m.clients] for m in want.target(name).models]
    assert doc["replay"] is None and doc["blocks"]  # the summary: all targets' blocks
    text = _edgewatch(*args).stdout
    assert text.index(f"#### target {ACME}") < text.index(f"#### target {POOL}") < text.index(
        "#### all targets (summary)")
    page = _edgewatch(*args, "--format", "html", "-o", str(tmp_path / "r.html"))
    html = (tmp_path / "r.html").read_text()
    assert page.returncode == 0 and html.index(f"Target {ACME}") < html.index("All targets")
    first, rest = html.split(f"Target {POOL}")
    second = rest.split("All targets")[0]
    for part, name in ((first, ACME), (second, POOL)):  # one chart per section, per target
        for title in ("answers blocked by each firewall model", "resolver choice",
                      "EDNS Client Subnet evidence", "addresses opened by allowlisting blocks"):
            assert f"{name}: {title}" in part, (name, title)


def test_report_over_the_replay_limit_leaves_the_replay_out(measured, source) -> None:
    """Above ``replay_limit`` queries the report keeps every per-target figure, drops only the
    replay sections and says why with the selection's query count; at the limit it replays."""
    from pipeline.config import load_config as load
    from pipeline.report.build import Options
    from pipeline.report.by_target import build_by_target

    models = load(measured["config"]).firewall_models
    full = build_by_target(source, Filters(), Options(interval_s=INTERVAL), models)
    queries = full.overall.queries
    assert queries > 0 and full.replay_note is None
    at = build_by_target(source, Filters(), Options(interval_s=INTERVAL), models,
                         replay_limit=queries)
    assert at.replay_note is None and all(t.replay is not None for t in at.targets)
    cut = build_by_target(source, Filters(), Options(interval_s=INTERVAL), models,
                          replay_limit=queries - 1)
    assert cut.replay_note is not None
    assert f"holds {queries:,} queries" in cut.replay_note
    assert f"--replay-limit {queries - 1:,}" in cut.replay_note
    assert [t.target_label for t in cut.targets] == [t.target_label for t in full.targets] \
        == [ACME, POOL]
    for mine, theirs in zip(cut.targets, full.targets, strict=True):
        assert mine.replay is None and theirs.replay is not None
        a, b = mine.to_dict(), theirs.to_dict()
        for d in (a, b):
            for key in ("generated_at", "replay", "replay_note"):
                d.pop(key)
        assert a == b


def test_cli_replay_limit_note_and_bad_values(measured) -> None:
    args = ["report", "--config", str(measured["config"]), "--store", str(measured["store"]),
            "--no-progress"]
    proc = _edgewatch(*args, "--replay-limit", "0")
    note = [line for line in proc.stderr.splitlines() if "--replay-limit 0" in line]
    assert len(note) == 1 and "edgewatch replay" in note[0]
    assert "left out: the selection holds" in proc.stdout.replace("\n", " ")
    assert "resolver choice (trivial model" not in proc.stdout
    doc = orjson.loads(_edgewatch(*args, "--replay-limit", "0", "--format", "json").stdout)
    assert "--replay-limit 0" in doc["replay_note"]
    assert all(t["replay"] is None for t in doc["targets"]) and len(doc["targets"]) == 2
    whole = orjson.loads(_edgewatch(*args, "--replay-limit", "unlimited", "--format",
                                    "json").stdout)
    assert whole["replay_note"] is None and all(t["replay"] for t in whole["targets"])
    for bad in ("-1", "many"):
        proc = _edgewatch(*args, "--replay-limit", bad, check=False)
        assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
        assert "--replay-limit" in proc.stderr and bad in proc.stderr
