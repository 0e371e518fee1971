"""The living list against the rotating lab, fetched the way a firewall's list fetcher does.

``edgewatch run`` measures the real lab (real resolvers, real TLS edges) into the ndjson store
while ``edgewatch allowlist serve`` publishes from it; the test polls with conditional GETs.
Every list served must be exactly what the lab's ground truth implies under the stated rule at
the evidence time the response names: the addresses some resolver answered in a poll within
``hold`` of it whose edge verifies. Then the probe stops: the list stays, ``/healthz`` turns
503. Last, the same store loaded into the real Elasticsearch node gives the same evidence.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest
from e2e_truth import polls_of

from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.publish.evidence import es_sightings, store_sightings
from pipeline.report.es_source import ElasticsearchSource
from pipeline.report.filters import Filters
from pipeline.report.store_source import StoreSource
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration
EDGEWATCH = [sys.executable, "-m", "pipeline"]
HOLD_H = 1.0

lab = lab_fixture("quick", speed=900.0, scope="module")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
    return {**env, **extra}


def _get(port: int, path: str, etag: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"If-None-Match": etag} if etag else {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, {k.lower(): v for k, v in resp.getheaders()}


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("allowlist serve never listened")


def _newest_verified(store, target: str) -> str:
    """The newest successful, verified check of ``target`` in the store, as the header reads."""
    newest = max(d["@timestamp"] for d in read_store(store, "checks")
                 if d.get("dns.question.name") == target and d.get("event.outcome") == "success"
                 and d.get("edgewatch.tls.verified") is True)
    return newest


def _wait_evidence(port: int, path: str, evidence: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _get(port, path)[2].get("x-edgewatch-evidence-time") == evidence:
            return
        time.sleep(0.1)
    raise AssertionError(f"the served list never reached the store's last check {evidence}")


def _expected(lab: LabStack, polls: dict, target: str, at: datetime) -> set[str]:
    """The rule applied to the ground truth: answered within hold of ``at``, edge verifies."""
    out: set[str] = set()
    lo = at.timestamp() - HOLD_H * 3600
    for (resolver, tgt), seq in polls.items():
        if tgt != target:
            continue
        times = [t for t, _, _ in seq]
        for t, want in zip(times, lab.truth.observe(resolver, target, times), strict=True):
            if lo <= t <= at.timestamp() and want.ok:
                out |= {a for a in want.addresses if lab.truth.edge_outcome(a) is None}
    return {f"{a}/32" for a in out}


@pytest.fixture(scope="module")
def served(lab: LabStack, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("publish")
    target = lab.scenario.targets[0].name
    port = _free_port()
    config = work / "edgewatch.toml"
    config.write_text(lab.config_path.read_text() + f"""
[publish]
listen = "127.0.0.1:{port}"
hold = "{HOLD_H:g}h"
window = "6h"
floor = 0.0
stale_after = "1h"
refresh = "5m"
targets = ["{target}"]
dir = "{work / 'lists'}"
""")
    store = work / "data"
    run = subprocess.Popen([*EDGEWATCH, "run", "--config", str(config), "--quiet"],
                           env=_env(EDGEWATCH_STORE__DIR=f'"{store}"',
                                    EDGEWATCH_STATE__DIR=f'"{work / "state"}"'),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    serve = subprocess.Popen([*EDGEWATCH, "allowlist", "serve", "--config", str(config)],
                             env=_env(EDGEWATCH_STORE__DIR=f'"{store}"',
                                      EDGEWATCH_STATE__DIR=f'"{work / "serve-state"}"'),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[tuple[int, bytes, dict[str, str]]] = []
    after_stop: list[tuple[int, bytes, dict[str, str]]] = []
    health: list[int] = []
    try:
        _wait_listening(port, serve)
        path, etag = f"/lists/{target}.txt", None
        deadline = time.monotonic() + 25  # about six scenario hours at 900x
        while time.monotonic() < deadline:
            status, body, headers = _get(port, path, etag)
            seen.append((status, body, headers))
            etag = headers.get("etag", etag)
            if status == 200 or health:  # from the first list served on
                health.append(_get(port, "/healthz")[0])
            time.sleep(0.25)
        run.send_signal(signal.SIGTERM)  # the probe stops: a simulated outage
        assert run.wait(timeout=60) == 0, run.stderr.read() if run.stderr else ""
        # the cycle in flight at SIGTERM was finished and stored: wait until the list follows it
        _wait_evidence(port, path, _newest_verified(store, target))
        stop = time.monotonic()
        while time.monotonic() < stop + 8:  # two scenario hours: past hold and stale_after
            after_stop.append(_get(port, path))
            time.sleep(0.25)
        unhealthy = _get(port, "/healthz")
    finally:
        for proc in (run, serve):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    assert serve.returncode == 0, serve.stderr.read() if serve.stderr else ""
    return {"store": store, "target": target, "seen": seen, "after": after_stop,
            "unhealthy": unhealthy, "health": health, "work": work, "config": config,
            "log": serve.stderr.read() if serve.stderr else ""}


def test_every_list_served_is_the_rule_applied_to_the_ground_truth(served, lab) -> None:
    polls = polls_of(read_store(served["store"], "checks"))
    bodies = [(b, h) for s, b, h in served["seen"] if s == 200]
    # before the first check a configured list is 503 (a fetcher keeps its copy), never empty
    assert {s for s, _, _ in served["seen"][:served["seen"].index(
        next(x for x in served["seen"] if x[0] == 200))]} <= {503}
    assert len(bodies) >= 3, "the list never changed while the lab rotated"
    changes = 0
    previous: set[str] | None = None
    for body, headers in bodies:
        at = datetime.fromisoformat(headers["x-edgewatch-evidence-time"].replace("Z", "+00:00"))
        got = set(body.decode().split())
        assert got == _expected(lab, polls, served["target"], at), at
        changes += previous is not None and got != previous
        previous = got
    assert changes >= 2  # additions and removals were both exercised
    assert sum(1 for s, _, _ in served["seen"] if s == 304) > len(bodies)  # cheap polling
    assert set(served["health"]) == {200}


def test_a_probe_outage_keeps_the_list_and_turns_health_503(served, lab) -> None:
    (status, frozen, headers), *later = served["after"]
    assert status == 200 and frozen.strip()
    assert {b for _, b, _ in later} == {frozen}  # never emptied, never shrunk: past hold
    at = datetime.fromisoformat(headers["x-edgewatch-evidence-time"].replace("Z", "+00:00"))
    polls = polls_of(read_store(served["store"], "checks"))
    assert set(frozen.decode().split()) == _expected(lab, polls, served["target"], at)
    last_before = frozen
    status, body, _ = served["unhealthy"]
    assert status == 503 and b"STALE" in body
    target = served["target"]
    assert (served["work"] / "lists" / f"{target}.txt").read_bytes() == last_before
    assert "list " + target in served["log"] and "removed" in served["log"]  # changes logged


def test_elasticsearch_gives_the_same_evidence_as_the_store(served, es, es_url: str) -> None:
    ns = f"publish{os.getpid()}"
    config = served["work"] / "es.toml"
    config.write_text(served["config"].read_text() + f"""
[elasticsearch]
url = "{es_url}"
namespace = "{ns}"
spool_dir = "{served['work'] / 'spool'}"
dead_letter_dir = "{served['work'] / 'dead'}"
""")
    for args in (("setup",), ("load", "--store", str(served["store"]), "--quiet")):
        proc = subprocess.run([*EDGEWATCH, *args, "--config", str(config)], env=_env(),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    es.indices.refresh(index=f"logs-edgewatch.check-{ns}")
    everything = Filters(start=datetime(2020, 1, 1).astimezone())
    from_store = sorted(store_sightings(StoreSource(served["store"]), everything),
                        key=repr)
    from_es = sorted(es_sightings(ElasticsearchSource(es, namespace=ns), everything), key=repr)
    assert from_store and from_es == from_store
    span = max(s.last for s in from_store) - min(s.last for s in from_store)
    assert span > timedelta(hours=HOLD_H)
