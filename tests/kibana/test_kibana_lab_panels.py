"""The run timeline, status now, certificates and allowlist coverage panels on a real lab run.

``edgewatch run`` polls the ``quick`` lab (real unbound/kresd/pdns-recursor resolvers on
loopback, real TLS edges with the lab CA's certificates, one of which changes its certificate
halfway) for nine scenario hours with two deployed allowlists, writes the ndjson store, and
``edgewatch load`` moves it into a fresh namespace of the test Elasticsearch node. Each panel's
query then runs as Kibana would send it over the store's time span, and its rows must equal,
exactly, what the lab says happened: the timeline's bars are the scenario's runs
(``lab.truth``, from the polls' own times) and the store's run summaries, the status board is
the last cycle in the store and what the scenario answered then, the certificates' dates and
fingerprints are the lab CA's leaves (``lab/pki.py``), the coverage counts are the allowlist
fields of the stored checks, and those fields are the lists' networks.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from elasticsearch import Elasticsearch
from kibana_vega import check_vega_lite_fields, vega_specs
from lab_panel_truth import (
    CERT_KINDS,
    Doc,
    bar,
    checks_of,
    cn,
    first_day_shares,
    intervals,
    lab_leaves,
    ms,
    poll_times,
    span,
    stalls,
    status_cells,
    stored_runs,
    truth_runs,
    ts,
)
from panel_documents import Indices, edgewatch, loaded_store, run_panel

from lab.scenario import resolve_path
from lab.stack import LabStack

pytestmark = pytest.mark.integration
CYCLES = 36  # nine scenario hours on the 15-minute grid: hourly rotation and address reuse
# Half the usual lab speed (a 15-minute poll every 2 real seconds) and about twice its real-time
# timeouts: the machine the tests share stalls now and then, and a poll that times out where the
# scenario put no fault says nothing about the panels (see ``stalls``).
SPEED = 450.0
SLOW_MACHINE = {"EDGEWATCH_TIMEOUTS__DNS": "0.9", "EDGEWATCH_TIMEOUTS__CONNECT": "0.5",
                "EDGEWATCH_TIMEOUTS__TLS": "0.8", "EDGEWATCH_TIMEOUTS__HTTP": "0.8"}
LISTS = {"na": "127.60.0.0/24", "eu": "127.61.0.0/24"}  # deployed allowlists, one network each

# The quick scenario, and one edge that starts presenting the expired certificate halfway: a
# change of certificate on one address that the certificates panel must show as two.
CHANGED_EDGE, CHANGED_AT = "127.60.0.20", "4h7m30s"
CERT_CHANGE = f"""
[[edges.changes]]
address = "{CHANGED_EDGE}"
at = "{CHANGED_AT}"
behaviour = "expired"
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabStack]:
    """Like ``lab.testing.lab_fixture("quick")``, on a copy of the scenario with CERT_CHANGE."""
    work = tmp_path_factory.mktemp("lab-certs")
    scenario = work / "quick-cert-change.toml"
    scenario.write_text(resolve_path("quick").read_text() + CERT_CHANGE)
    stack = LabStack(scenario, speed=SPEED, run_dir=work / "lab")
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()



@pytest.fixture(scope="module")
def loaded(lab: LabStack, es: Elasticsearch, es_url: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Indices, Path]]:
    work = tmp_path_factory.mktemp("kibana-lab-panels")
    ns = f"kibp{os.getpid()}"
    store = work / "data"
    lists = ""
    for name, cidr in LISTS.items():
        (work / f"{name}.txt").write_text(f"{cidr}\n")
        lists += f'\n[[allowlists]]\nname = "{name}"\nfile = "{work / name}.txt"\n'
    run_config = work / "run.toml"
    run_config.write_text(lab.config_path.read_text() + f"""
[store]
dir = "{store}"

[state]
dir = "{work / 'state'}"
{lists}""")
    edgewatch("run", "--config", str(run_config), "--cycles", str(CYCLES), "--quiet",
              prefix=lab.exec_prefix, overrides=SLOW_MACHINE)
    with loaded_store(es, es_url, ns, run_config, edgewatch) as made:
        yield made, store


def rows_of(es: Elasticsearch, objects: list[Doc], loaded: tuple[Indices, Path],
            vis_id: str) -> list[Doc]:
    made, store = loaded
    rows, _ = run_panel(es, objects, made, vis_id, span(store))
    assert check_vega_lite_fields(vega_specs(objects)[vis_id], rows) == []
    return rows


def calculations(objects: list[Doc], vis_id: str, layer: int | None = None) -> dict[str, str]:
    """``{as: expression}`` of a panel's calculate transforms (of one layer, if given)."""
    spec = vega_specs(objects)[vis_id]
    steps = spec["transform"] if layer is None else spec["layer"][layer]["transform"]
    return {t["as"]: t["calculate"] for t in steps if "calculate" in t}


# --------------------------------------------------------------------------------------------
# Run timeline
# --------------------------------------------------------------------------------------------

def test_run_timeline_bars_are_the_scenarios_runs(
        es: Elasticsearch, objects: list[Doc], build: Any, lab: LabStack,
        loaded: tuple[Indices, Path]) -> None:
    rows = rows_of(es, objects, loaded, "edgewatch-run-timeline")
    calc = calculations(objects, "edgewatch-run-timeline")
    assert calc["run_until"] == ("isValid(datum.end.value) ? datum.end.value : "
                                 "datum.last_seen.value")
    assert calc["run_start"] == "datum.start.value"
    assert calc["f"] == "datum.run.hits.hits[0].fields"
    checks = checks_of(loaded[1])
    polls = sum(len(times) for times in poll_times(checks).values())
    assert len(stalls(lab, checks)) < polls / 4, "the machine stalled too often to say much"
    got = [bar(r) for r in rows]
    assert len(got) == len(set(got))  # one bar per run
    want = truth_runs(lab, checks)
    assert sorted(got) == sorted(want)
    # the scenario reuses addresses: a second run of one address is a second bar on its row
    per_row = Counter((resolver, target, ip) for resolver, target, ip, *_ in want)
    assert any(n > 1 for n in per_row.values())
    assert any(open_ for *_, open_ in want) and not all(open_ for *_, open_ in want)
    # nothing was cut by the row cap, and the most recently seen come first
    importlib.import_module("panels_runs")  # kibana/ is on sys.path once build.py is loaded
    assert len(rows) < sys.modules["panels_runs"].RUN_ROWS
    last_seen = [r["last_seen"]["value"] for r in rows]
    assert last_seen == sorted(last_seen, reverse=True)
    # over the store's span no bar is clipped: what is drawn is the run itself
    assert all(r["picked"]["buckets"][0]["from"] < r["start"]["value"] and
               bar(r)[4] < r["picked"]["buckets"][0]["to"] for r in rows)


def test_run_timeline_is_the_stores_run_summaries(
        es: Elasticsearch, objects: list[Doc], loaded: tuple[Indices, Path]) -> None:
    """Bar for bar the store's run summaries, and the network facts the bars are coloured by."""
    rows = rows_of(es, objects, loaded, "edgewatch-run-timeline")
    latest = stored_runs(loaded[1])
    assert {r["key"]: bar(r) for r in rows} == {
        k: (d["edgewatch.resolver.name"], d["dns.question.name"], d["destination.ip"],
            ms(d["edgewatch.run.start"]),
            ms(d.get("edgewatch.run.end", d["edgewatch.run.last_seen"])),
            d["edgewatch.run.open"]) for k, d in latest.items()}
    facts = {r["key"]: (r["run"]["hits"]["hits"][0]["fields"]["edgewatch.destination.prefix24"][0],
                        r["run"]["hits"]["hits"][0]["fields"]["destination.as.number"][0])
             for r in rows}
    assert facts == {k: (d["edgewatch.destination.prefix24"], d["destination.as.number"])
                     for k, d in latest.items()}
    assert len({asn for _, asn in facts.values()}) > 1  # colour by ASN tells networks apart


# --------------------------------------------------------------------------------------------
# Status now
# --------------------------------------------------------------------------------------------

def test_status_now_is_the_last_cycle_in_the_store(
        es: Elasticsearch, objects: list[Doc], loaded: tuple[Indices, Path]) -> None:
    rows = rows_of(es, objects, loaded, "edgewatch-status-now")
    last: dict[tuple[str, str], tuple[datetime, str]] = {}
    checks = checks_of(loaded[1])
    for d in checks:
        key = (d["dns.question.name"], d["edgewatch.resolver.name"])
        last[key] = max(last.get(key, (ts(d["@timestamp"]), "")),
                        (ts(d["@timestamp"]), d["edgewatch.cycle.id"]))
    want: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    for (target, resolver), (at, cycle) in last.items():
        for rdtype in {d["dns.question.type"] for d in checks}:
            docs = [d for d in checks if (d["dns.question.name"], d["edgewatch.resolver.name"],
                                          d["edgewatch.cycle.id"], d["dns.question.type"])
                    == (target, resolver, cycle, rdtype)]
            if not docs:
                continue
            answered = [d for d in docs if "destination.ip" in d]
            want[(target, resolver, rdtype)] = (
                cycle, ms(at), len({d["destination.ip"] for d in answered}),
                max((d.get("edgewatch.dns.answer_count", 0) for d in docs), default=0),
                sum(1 for d in answered if d["event.outcome"] == "failure"),
                len(answered) < len(docs))
    assert status_cells(rows) == want
    assert len({c[0] for c in want.values()}) == 1  # every pair's latest is the last cycle


def test_status_now_is_what_the_scenario_answered(
        es: Elasticsearch, objects: list[Doc], lab: LabStack,
        loaded: tuple[Indices, Path]) -> None:
    """Answer size and passing addresses of the last poll, from the ground truth: the
    scenario's answer then, and which of its edges fail by their behaviour. A timeout where the
    scenario expects none is the shared machine stalling (see ``stalls``), counted apart."""
    rows = rows_of(es, objects, loaded, "edgewatch-status-now")
    checks = checks_of(loaded[1])
    polls = poll_times(checks)
    stalled = stalls(lab, checks)
    states: Counter[str] = Counter()
    for (target, resolver, rdtype), cell in status_cells(rows).items():
        cycle, at, addresses, size, failed, dns_failed = cell
        times = polls[(resolver, target, rdtype)]
        assert ms(times[-1]) == at
        if (resolver, target, rdtype, times[-1]) in stalled:
            states["stalled"] += 1
            continue
        answer = lab.truth.observe(resolver, target, times, rdtype)[-1]
        assert dns_failed == (not answer.ok)
        if answer.ok:
            assert (addresses, size) == (len(answer.addresses), len(answer.addresses))
            failing = {a for a in answer.addresses
                       if lab.truth.edge_outcome(a, times[-1]) is not None}
            edge_stalls = {d["destination.ip"] for d in checks
                           if (d["edgewatch.cycle.id"], d["edgewatch.resolver.name"],
                               d["dns.question.name"]) == (cycle, resolver, target)
                           and d.get("error.type", "").endswith(".timeout")
                           and d.get("destination.ip") not in failing}
            assert failed == len(failing) + len(edge_stalls)
            states["edge stalled"] += len(edge_stalls)
        states["dns failed" if dns_failed else "failed" if failed else "passed"] += 1
    assert states["passed"] and states["failed"], states  # the board shows both colours


# --------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------

def test_certificates_are_the_lab_cas(es: Elasticsearch, objects: list[Doc], lab: LabStack,
                                      loaded: tuple[Indices, Path]) -> None:
    """Per address, every leaf the lab's edge presented, in the order it presented them, with
    the span of checks it was presented in: the scenario's edge behaviour at each check time
    picks the leaf, the lab CA's files give its fingerprint, names and dates."""
    rows = rows_of(es, objects, loaded, "edgewatch-certificates")
    leaves = lab_leaves(lab)
    spans: dict[str, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for d in checks_of(loaded[1]):
        if "tls.server.hash.sha256" in d:
            t = ts(d["@timestamp"])
            spans[d["destination.ip"]][lab.scenario.behaviour_at(d["destination.ip"],
                                                                 t.timestamp())].append(t)
    want = {}
    for address, kinds in spans.items():
        want[address] = sorted(
            (leaves[k].fingerprint(hashes.SHA256()).hex().upper(), cn(leaves[k].subject),
             cn(leaves[k].issuer), ms(leaves[k].not_valid_after_utc),
             ms(leaves[k].not_valid_before_utc), ms(min(times)), ms(max(times)), k != "ok")
            for k, times in kinds.items())
    got = {r["key"]: sorted((c["key"], c["subject"]["buckets"][0]["key"],
                             c["issuer"]["buckets"][0]["key"], int(c["not_after"]["value"]),
                             int(c["not_before"]["value"]), int(c["first_seen"]["value"]),
                             int(c["last_seen"]["value"]), c["verified"]["doc_count"] == 0)
                            for c in r["certs"]["buckets"]) for r in rows}
    assert got == want
    assert {k for kinds in spans.values() for k in kinds} == set(CERT_KINDS)
    # the change: first the good leaf, then the expired one, one after the other
    (changed,) = [r for r in rows if r["key"] == CHANGED_EDGE]
    order = [c["key"] for c in changed["certs"]["buckets"]]  # by first presentation
    assert order == [leaves[k].fingerprint(hashes.SHA256()).hex().upper()
                     for k in ("ok", "expired")]
    first, second = changed["certs"]["buckets"]
    assert first["last_seen"]["value"] < second["first_seen"]["value"]
    # soonest expiry first: an address presenting the expired leaf on top
    expires = [r["expires"]["value"] for r in rows]
    assert expires == sorted(expires)
    assert rows[0]["expires"]["value"] == ms(leaves["expired"].not_valid_after_utc)
    assert ms(leaves["expired"].not_valid_after_utc) < ms(datetime.now(UTC))
    calc = calculations(objects, "edgewatch-certificates")
    assert calc["days_left"] == "floor((datum.not_after - now()) / 86400000)"


# --------------------------------------------------------------------------------------------
# Allowlist coverage
# --------------------------------------------------------------------------------------------

def test_allowlist_coverage_is_the_allowlist_fields(
        es: Elasticsearch, objects: list[Doc], loaded: tuple[Indices, Path]) -> None:
    rows = rows_of(es, objects, loaded, "edgewatch-allowlist-coverage")
    docs = [d for d in checks_of(loaded[1]) if "destination.ip" in d]
    # the fields themselves are the lists' networks
    for d in docs:
        ip = ipaddress.ip_address(d["destination.ip"])
        inside = {n for n, cidr in LISTS.items() if ip in ipaddress.ip_network(cidr)}
        assert (set(d["edgewatch.allowlist.allowed"]), set(d["edgewatch.allowlist.denied"])) \
            == (inside, set(LISTS) - inside)
    by_interval = intervals(rows, docs)
    got = {r["key"]: (r["doc_count"], {b["key"]: b["doc_count"] for b in r["lists"]["buckets"]})
           for r in rows if r["doc_count"]}
    want = {}
    for key, ds in by_interval.items():
        allowed = Counter(n for d in ds for n in d["edgewatch.allowlist.allowed"])
        allowed["(no list)"] = sum(1 for d in ds if not d["edgewatch.allowlist.allowed"])
        want[key] = (len(ds), {n: c for n, c in allowed.items() if c})
    assert got == want
    assert {n for _, lists in got.values() for n in lists} == {*LISTS, "(no list)"}
    calc = calculations(objects, "edgewatch-allowlist-coverage", layer=0)
    assert calc["share"] == "datum.interval_checks > 0 ? datum.share : null"


@pytest.mark.parametrize("hours", [2, 24])
def test_first_day_list_from_the_address_breakdown(
        es: Elasticsearch, objects: list[Doc], loaded: tuple[Indices, Path], hours: int) -> None:
    """The per-interval address breakdown is the store's, and what the first-day layer makes of
    it is the share of checks whose address was seen in the first ``hours``."""
    rows = rows_of(es, objects, loaded, "edgewatch-allowlist-coverage")
    docs = [d for d in checks_of(loaded[1]) if "destination.ip" in d]
    by_interval = intervals(rows, docs)
    assert {r["key"]: {a["key"]: a["doc_count"] for a in r["ips"]["buckets"]}
            for r in rows if r["doc_count"]} == {
        k: dict(Counter(d["destination.ip"] for d in ds)) for k, ds in by_interval.items()}
    start = min(by_interval)
    early = {d["destination.ip"] for k, ds in by_interval.items() for d in ds
             if k < start + hours * 3_600_000}
    want = {k: sum(1 for d in ds if d["destination.ip"] in early) / len(ds)
            for k, ds in by_interval.items()}
    assert first_day_shares(rows, hours) == pytest.approx(want)
    if hours == 2:  # the rotation brings new addresses: a list from the first hours decays
        assert min(want.values()) < 1.0
    calc = calculations(objects, "edgewatch-allowlist-coverage", layer=1)
    assert calc["n_first_day"] == ("datum.address_first < datum.range_first + first_hours * "
                                   "3600000 ? datum.n : 0")
