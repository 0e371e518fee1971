"""Compare stored documents (from any source) with the lab's ground truth, poll by poll and run
by run. Shared by the end-to-end tests of the ndjson store and of Elasticsearch."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from lab.stack import LabStack
from lab.truth import GroundTruth


def timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


Poll = tuple[float, str | None, frozenset[str]]


def polls_of(checks: Iterable[dict]) -> dict[tuple[str, str], list[Poll]]:
    """Per (resolver, target): (time, dns error, answer set) of every poll, in time order."""
    per_check: dict[tuple[str, str, str], dict] = {}
    for doc in checks:
        key = (doc["edgewatch.resolver.name"], doc["dns.question.name"], doc["edgewatch.check.id"])
        entry = per_check.setdefault(key, {"t": timestamp(doc["@timestamp"]), "err": None,
                                           "addrs": set()})
        if "destination.ip" in doc:
            entry["addrs"].add(doc["destination.ip"])
        else:
            entry["err"] = doc.get("error.type")
    out: dict[tuple[str, str], list] = defaultdict(list)
    for (resolver, target, _), e in per_check.items():
        out[(resolver, target)].append((e["t"], e["err"], frozenset(e["addrs"])))
    for polls in out.values():
        polls.sort()
    return out


def latest_runs(runs: Iterable[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for doc in runs:
        cur = latest.get(doc["edgewatch.run.id"])
        if cur is None or doc["edgewatch.run.version"] >= cur["edgewatch.run.version"]:
            latest[doc["edgewatch.run.id"]] = doc
    return latest


def compare_with_truth(lab: LabStack, checks: Iterable[dict], runs: Iterable[dict],
                       rdtype: str = "A", truth: GroundTruth | None = None) -> dict[str, int]:
    """Assert every poll and every run of one record type (A, or a dual-stack lab's AAAA)
    equals the ground truth (``truth``: one observer's, default the lab's); return what was
    compared."""
    truth = truth or lab.truth
    polls = polls_of(d for d in checks if d["dns.question.type"] == rdtype)
    runs = latest_runs(d for d in runs if d["dns.question.type"] == rdtype)
    assert {r for r, _ in polls} == {r.name for r in lab.scenario.resolvers}
    figures = {"polls": 0, "runs": 0, "reused": 0, "failures": 0}
    for (resolver, target), seq in polls.items():
        times = [t for t, _, _ in seq]
        expected = truth.observe(resolver, target, times, rdtype)
        for (t, err, addrs), want in zip(seq, expected, strict=True):
            assert (err, addrs) == (want.error_type, want.addresses if want.ok else frozenset()), (
                resolver, target, rdtype, datetime.fromtimestamp(t), err, sorted(addrs),
                want.error_type, sorted(want.addresses))
        figures["polls"] += len(seq)
        figures["failures"] += sum(1 for _, err, _ in seq if err)
        want_runs = sorted(
            (r.address, round(r.start.timestamp(), 3),
             None if r.end is None else round(r.end.timestamp(), 3), r.checks, r.gaps)
            for r in truth.runs(resolver, target, times, rdtype))
        got_runs = sorted(
            (d["destination.ip"], round(timestamp(d["edgewatch.run.start"]), 3),
             round(timestamp(d["edgewatch.run.end"]), 3) if "edgewatch.run.end" in d else None,
             d["edgewatch.run.checks"],
             d["edgewatch.run.gaps"])
            for d in runs.values()
            if d["edgewatch.resolver.name"] == resolver and d["dns.question.name"] == target)
        assert got_runs == want_runs, (resolver, target)
        figures["runs"] += len(got_runs)
        per_addr = defaultdict(int)
        for r in got_runs:
            per_addr[r[0]] += 1
        figures["reused"] += sum(1 for n in per_addr.values() if n > 1)
    return figures


def both_sinks(work: Path, es_url: str, namespace: str) -> str:
    """The config sections that make ``edgewatch run`` write one folder's store and state and a
    cluster namespace at once (appended to the lab's config by the end-to-end tests)."""
    return f"""
[store]
dir = "{work / 'data'}"

[state]
dir = "{work / 'state'}"

[elasticsearch]
url = "{es_url}"
namespace = "{namespace}"
spool_dir = "{work / 'spool'}"
dead_letter_dir = "{work / 'dead-letter'}"
flush_interval = "200ms"

[sinks]
enabled = ["elasticsearch", "ndjson"]
"""
