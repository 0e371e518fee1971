"""What the lab says happened, read from a store and the scenario: for test_kibana_lab_panels.

Kept apart from the tests so that each stays short: poll times and run summaries of a store,
the scenario's runs at those polls, the stalls of a loaded machine, the lab CA's leaves, and the
first-day layer's transforms mirrored in Python.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from kibana_vega import KibanaContext

from lab.stack import LabStack
from pipeline.sinks.ndjson import read_store

Doc = dict[str, Any]
CERT_KINDS = ("ok", "wrong_name", "expired")  # the edge behaviours that present a certificate


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def ms(value: str | datetime) -> int:
    return int((ts(value) if isinstance(value, str) else value).timestamp() * 1000)


def checks_of(store: Path) -> list[Doc]:
    return list(read_store(store, "checks"))


def span(store: Path) -> KibanaContext:
    """The time picker over the store's checks, a minute either side."""
    times = [ts(d["@timestamp"]) for d in checks_of(store)]
    return KibanaContext(min(times) - timedelta(minutes=1), max(times) + timedelta(minutes=1))


def poll_times(checks: list[Doc]) -> dict[tuple[str, str, str], list[datetime]]:
    """Per (resolver, target, record type) the time of every poll, ascending."""
    out: dict[tuple[str, str, str], set[datetime]] = defaultdict(set)
    for d in checks:
        key = (d["edgewatch.resolver.name"], d["dns.question.name"], d["dns.question.type"])
        out[key].add(ts(d["@timestamp"]))
    return {k: sorted(v) for k, v in out.items()}


def bar(row: Doc) -> tuple[Any, ...]:
    """What the timeline draws for one row, as its transforms compute it (the test holds the
    transforms to these expressions)."""
    f = row["run"]["hits"]["hits"][0]["fields"]
    until = row["end"]["value"] if row["end"]["value"] is not None else row["last_seen"]["value"]
    return (f["edgewatch.resolver.name"][0], f["dns.question.name"][0], f["destination.ip"][0],
            int(row["start"]["value"]), int(until), f["edgewatch.run.open"][0])


def stored_runs(store: Path) -> dict[str, Doc]:
    """The latest version of every run summary in the store."""
    latest: dict[str, Doc] = {}
    for d in read_store(store, "runs"):
        cur = latest.get(d["edgewatch.run.id"])
        if cur is None or d["edgewatch.run.version"] >= cur["edgewatch.run.version"]:
            latest[d["edgewatch.run.id"]] = d
    return latest


def stalls(lab: LabStack, checks: list[Doc]) -> set[tuple[str, str, str, datetime]]:
    """Polls whose DNS query timed out where the scenario put no fault: the shared test machine
    stalled past the lab's real-time DNS timeout. The scenario cannot say what such a poll
    returns; the pipeline (rightly) records a gap, so the ground truth does too."""
    return {(d["edgewatch.resolver.name"], d["dns.question.name"], d["dns.question.type"],
             ts(d["@timestamp"])) for d in checks
            if d.get("error.type") == "dns.timeout"
            and lab.truth.fault(d["edgewatch.resolver.name"], ts(d["@timestamp"])) is None}


def truth_runs(lab: LabStack, checks: list[Doc]) -> list[tuple[Any, ...]]:
    """The scenario's runs at the store's poll times (``lab.truth``), stalled polls as gaps:
    the run rule of docs/DOCUMENTS.md applied to the scenario's answers."""
    stalled = stalls(lab, checks)
    out = []
    for (resolver, target, rdtype), times in poll_times(checks).items():
        answers = lab.truth.observe(resolver, target, times, rdtype)
        open_runs: dict[str, list[Any]] = {}
        for t, answer in zip(times, answers, strict=True):
            if not answer.ok or (resolver, target, rdtype, t) in stalled:
                continue  # a failed query is a gap, not an end
            for address in [a for a in open_runs if a not in answer.addresses]:
                run = open_runs.pop(address)
                out.append((resolver, target, address, ms(run[0]), ms(t), False))
            for address in answer.addresses:
                open_runs.setdefault(address, [t, t])[1] = t
        out += [(resolver, target, a, ms(r[0]), ms(r[1]), True) for a, r in open_runs.items()]
    return out


def status_cells(rows: list[Doc]) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    out = {}
    for target in rows:
        for r in target["resolvers"]["buckets"]:
            (cycle,) = r["latest"]["buckets"]
            for t in cycle["types"]["buckets"]:
                out[(target["key"], r["key"], t["key"])] = (
                    cycle["key"], int(cycle["at"]["value"]), t["addresses"]["value"],
                    int(t["answer"]["value"] or 0), t["failed"]["doc_count"],
                    t["dns_failed"]["doc_count"] > 0)
    return out


def lab_leaves(lab: LabStack) -> dict[str, x509.Certificate]:
    pki = lab.run_dir / "pki"
    return {k: x509.load_pem_x509_certificate((pki / f"edge-{k}.pem").read_bytes())
            for k in CERT_KINDS}


def cn(name: x509.Name) -> str:
    return str(name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


def intervals(rows: list[Doc], docs: list[Doc]) -> dict[int, list[Doc]]:
    """The stored checks with an address, by the histogram interval their @timestamp falls in."""
    keys = [r["key"] for r in rows]
    width = keys[1] - keys[0]
    out: dict[int, list[Doc]] = defaultdict(list)
    for d in docs:
        t = ms(d["@timestamp"])
        out[keys[0] + (t - keys[0]) // width * width].append(d)
    return out


def first_day_shares(rows: list[Doc], hours: int) -> dict[int, float]:
    """The first-day layer's transforms, step by step, on the panel's rows."""
    flat = [(r["key"], a["key"], a["doc_count"], r["doc_count"]) for r in rows
            for a in r["ips"]["buckets"]]
    address_first: dict[str, int] = {}
    for key, ip, _, _ in flat:
        address_first[ip] = min(key, address_first.get(ip, key))
    range_first = min(key for key, *_ in flat)
    allowed: Counter[int] = Counter()
    checks = {}
    for key, ip, n, total in flat:
        allowed[key] += n if address_first[ip] < range_first + hours * 3_600_000 else 0
        checks[key] = total
    return {k: allowed[k] / checks[k] for k in checks}
