"""A real Prometheus scrapes real ``edgewatch run`` daemons against the lab and evaluates the
shipped alert rules (config/edgewatch.alerts.yml) through its own HTTP API.

Two daemons run side by side, scraped by one Prometheus (job "edgewatch"):

* **healthy**: the lab (quick scenario, 900x) from 23:00 of day 0, through its migration at
  day 1 00:07:30 (view na-alt's first address is replaced by 127.60.1.20), into the session's
  Elasticsearch node and the ndjson store, judged against two deployed lists: ``holds`` covers
  every edge the scenario has, ``stale`` only those served before the migration. The stale-list
  alert must fire for ``stale`` (and not before the first cycle after the migration) and never
  for ``holds``; delivery and cadence alerts must stay silent; the counters must equal what the
  ground truth implies for the cycles they count.
* **broken**: a resolver that never answers (a 5 s DNS timeout against a 1 s cadence) and a
  cluster that refuses connections: the not-delivering and cycles-late alerts must fire, and
  the spool gauge must hold exactly the documents the cycles wrote.

The rules are the shipped ones with their durations divided by the lab's speed-up (30 minutes
of cadence are 2 s here); nothing is compared with a timing.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_server import Prometheus, free_port, prometheus, scaled_rules

from lab.stack import LabStack
from pipeline.commands.setup import setup
from pipeline.config import ElasticsearchSettings
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SPEED = 900.0
LAB_START = datetime(2026, 3, 2, 22, 45, tzinfo=UTC)  # 82.5 scenario minutes (5.5 s) before
MIGRATION = datetime(2026, 3, 3, 0, 7, 30, tzinfo=UTC)  # view na-alt: 127.60.1.10 → .20
ACME = "acme-v02.api.lab.test"
LISTS = {
    "holds": ["# every edge of the quick scenario", "127.60.0.0/23", "127.61.0.0/24"],
    "stale": ["# the edges served before the migration of view na-alt", "127.60.0.0/24",
              "127.60.1.10", "127.60.1.11", "127.61.0.0/24"],
}

def networks(name: str) -> list:
    return [ip_network(line, strict=False) for line in LISTS[name] if not line.startswith("#")]


def denied_by(name: str, address: str) -> bool:
    return not any(ip_address(address) in net for net in networks(name))


def healthy_config(lab: LabStack, tmp: Path, es_url: str, namespace: str, port: int) -> Path:
    for name, lines in LISTS.items():
        (tmp / f"{name}.txt").write_text("\n".join(lines) + "\n")
    lists = "".join(f'\n[[allowlists]]\nname = "{n}"\nfile = "{tmp / n}.txt"\n' for n in LISTS)
    config = tmp / "healthy.toml"
    config.write_text(lab.config_path.read_text() + f"""
[state]
dir = "{tmp / 'state'}"
[store]
dir = "{tmp / 'data'}"
[sinks]
enabled = ["elasticsearch", "ndjson"]
[elasticsearch]
url = "{es_url}"
namespace = "{namespace}"
flush_interval = "0.1s"
request_timeout = "10s"
spool_dir = "{tmp / 'spool'}"
dead_letter_dir = "{tmp / 'dead'}"
[metrics]
listen = "127.0.0.1:{port}"
{lists}""")
    return config


def broken_config(lab: LabStack, tmp: Path, dead_dns: int, dead_es: int, port: int) -> Path:
    clock = lab.clock
    start = datetime.fromtimestamp(clock.start, UTC).isoformat()
    config = tmp / "broken.toml"
    config.write_text(f"""
[observer]
name = "broken-observer"
[clock]
start = "{start}"
anchor = {clock.anchor!r}
speed = {clock.speed!r}
[schedule]
interval = "15m"
[timeouts]
dns = 5.0
[rdns]
enabled = false
[state]
dir = "{tmp / 'state-b'}"
[elasticsearch]
url = "http://127.0.0.1:{dead_es}"
request_timeout = "1s"
flush_interval = "0.1s"
spool_dir = "{tmp / 'spool-b'}"
dead_letter_dir = "{tmp / 'dead-b'}"
[metrics]
listen = "127.0.0.1:{port}"
[[targets]]
name = "{ACME}"
[[targets]]
name = "acme-staging-v02.api.lab.test"
[[resolvers]]
name = "silent"
address = "127.0.0.1"
port = {dead_dns}
""")
    return config


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def by(got: dict, name: str, *labels: str) -> dict[tuple, float]:
    return {tuple(dict(k[1])[label] for label in labels): v
            for k, v in got.items() if k[0] == name}


class Daemon:
    """``edgewatch run`` in a subprocess, stopped by SIGTERM at the end (and killed if need be)."""

    def __init__(self, config: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEWATCH_", "ES_"))}
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config",
                                      str(config)], env=env, cwd=ROOT, stdout=log.open("wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def alive(self) -> None:
        assert self.proc.poll() is None, self.log.read_text()[-3000:]


@pytest.fixture
def silent_dns() -> Iterator[int]:
    """A UDP port on loopback that takes queries and never answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def wait_for(check, timeout: float, what: str, daemons: list[Daemon]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for d in daemons:
            d.alive()
        assert time.monotonic() < deadline, f"not within {timeout:.0f}s: {what}"
        time.sleep(0.25)


def firing(prom: Prometheus, alert: str, **labels: str) -> bool:
    return any(a["labels"]["alertname"] == alert and a["state"] == "firing"
               and all(a["labels"].get(k) == v for k, v in labels.items())
               for a in prom.alerts())


def alert_history(prom: Prometheus, start: float, end: float) -> dict[tuple, list[float]]:
    """(alertname, alertstate, instance, list) → the evaluation times the alert had that
    state, over the whole run."""
    out: dict[tuple, list[float]] = defaultdict(list)
    for series in prom.query_range("ALERTS", start, end, 0.25):
        m = series["metric"]
        key = (m["alertname"], m["alertstate"], m["instance"], m.get("list", ""))
        out[key] += [float(t) for t, _ in series["values"]]
    return out


def when(doc: dict) -> float:
    """A document's @timestamp (scenario time) as unix seconds."""
    return datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00")).timestamp()


def cycles_of(store: Path) -> list[list[dict]]:
    """The stored check documents, per cycle, in the order the cycles ran."""
    per: dict[str, list[dict]] = defaultdict(list)
    for doc in read_store(store, "checks"):
        per[doc["edgewatch.cycle.id"]].append(doc)
    return sorted(per.values(), key=lambda docs: min(map(when, docs)))


def expected_from_truth(lab: LabStack, cycles: list[list[dict]]) -> dict[str, Counter]:
    """What the ground truth says the counted cycles' polls answered, and which of those
    addresses each list denies."""
    want: dict[str, Counter] = {"denied": Counter(), "addresses": Counter(), "checks": Counter()}
    for docs in cycles:
        polls = {(d["edgewatch.resolver.name"], d["dns.question.name"]): when(d) for d in docs}
        for (resolver, target), t in polls.items():
            [answer] = lab.truth.observe(resolver, target, [t])
            addresses = answer.addresses if answer.ok else frozenset()
            want["addresses"][(target, resolver)] = len(addresses)  # the last cycle's
            if not answer.ok:
                want["checks"][(target, resolver, "failure", answer.error_type)] += 1
            for a in addresses:
                error = lab.truth.edge_outcome(a)
                want["checks"][(target, resolver, "failure" if error else "success",
                                error or "")] += 1
            for name in LISTS:
                want["denied"][(name, target, resolver)] += sum(
                    denied_by(name, a) for a in addresses)
    return want


def test_prometheus_evaluates_the_shipped_alerts_against_real_daemons(
        tmp_path: Path, es_url: str, es_namespace: str, silent_dns: int) -> None:
    setup(ElasticsearchSettings(url=es_url, namespace=es_namespace), out=io.StringIO())
    healthy_port, broken_port, dead_es = free_port(), free_port(), free_port()
    rules = scaled_rules(ROOT / "config" / "edgewatch.alerts.yml", SPEED, tmp_path / "rules.yml")
    targets = [f"127.0.0.1:{healthy_port}", f"127.0.0.1:{broken_port}"]
    healthy_instance, broken_instance = targets
    # The lab starts last, once the cluster and Prometheus are up, so that its accelerated
    # clock reaches the migration only after the daemons have measured the list holding.
    with prometheus(tmp_path, targets, rules) as prom, \
            LabStack("quick", speed=SPEED, run_dir=tmp_path / "lab", start_at=LAB_START) as lab:
        started = time.time()
        daemons = [Daemon(healthy_config(lab, tmp_path, es_url, es_namespace, healthy_port),
                          tmp_path / "healthy.log"),
                   Daemon(broken_config(lab, tmp_path, silent_dns, dead_es, broken_port),
                          tmp_path / "broken.log")]
        try:
            wait_for(lambda: firing(prom, "EdgewatchAllowlistStale", list="stale")
                     and firing(prom, "EdgewatchNotDelivering", instance=broken_instance)
                     and firing(prom, "EdgewatchCyclesLate", instance=broken_instance),
                     120, "the stale-list, not-delivering and cycles-late alerts firing", daemons)
            time.sleep(2)  # a few more evaluations of the holding list after the migration
            healthy, broken = scrape(healthy_port), scrape(broken_port)
            ended = time.time()
        finally:
            codes = [d.stop() for d in daemons]
        history = alert_history(prom, started, ended)
    assert codes == [0, 0], [d.log.read_text()[-2000:] for d in daemons]

    # -- the healthy daemon: exact counts against the ground truth --------------------------
    n = healthy[("edgewatch_cycles_total", (("delivered", "true"),))]
    assert healthy[("edgewatch_cycles_total", (("delivered", "false"),))] == 0
    cycles = cycles_of(tmp_path / "data")[:int(n)]  # the store may hold one more: not counted
    assert len(cycles) == n
    assert min(when(d) for d in cycles[0]) < MIGRATION.timestamp()  # the list held at first
    want = expected_from_truth(lab, cycles)
    assert by(healthy, "edgewatch_checks_denied_total", "list", "target", "resolver") == \
        want["denied"]
    assert want["denied"][("stale", ACME, "lab-cloudflare-a")] > 0  # the migration was seen
    assert sum(v for (name, *_), v in want["denied"].items() if name == "holds") == 0
    assert by(healthy, "edgewatch_last_cycle_answer_addresses", "target", "resolver") == \
        want["addresses"]
    checks = by(healthy, "edgewatch_checks_total", "target", "resolver", "outcome", "error_type")
    assert checks == want["checks"]
    # the window had the scenario's DNS drops (lab-opendns) and every failing edge (staging)
    assert {k[3] for k in checks} >= {"", "dns.timeout", "tcp.refused", "tcp.timeout",
                                      "tls.handshake", "tls.verify"}
    assert checks == Counter((d["dns.question.name"], d["edgewatch.resolver.name"],
                              d["event.outcome"], d.get("error.type", ""))
                             for docs in cycles for d in docs)  # and what the store holds
    assert healthy[("edgewatch_dead_letters_total", ())] == 0
    assert healthy[("edgewatch_spool_refused_documents_total", ())] == 0
    assert healthy[("edgewatch_elasticsearch_documents_total", (("result", "stored"),))] > 0
    delivered = by(healthy, "edgewatch_last_delivery_timestamp_seconds", "sink")
    assert set(delivered) == {("ndjson",), ("elasticsearch",)}
    assert all(started < at <= ended for at in delivered.values())

    # -- the alerts, as Prometheus evaluated them over the run -------------------------------
    def times(alert: str, state: str, instance: str, name: str = "") -> list[float]:
        return history.get((alert, state, instance, name), [])

    first_denial = min(when(d) for docs in cycles for d in docs
                       if "stale" in d.get("edgewatch.allowlist.denied", []))
    assert min(times("EdgewatchAllowlistStale", "pending", healthy_instance, "stale")) >= \
        lab.clock.real_at(first_denial)  # not while the list still held
    assert times("EdgewatchAllowlistStale", "firing", healthy_instance, "stale")
    for state in ("pending", "firing"):
        assert not times("EdgewatchAllowlistStale", state, healthy_instance, "holds")
        assert not times("EdgewatchNotDelivering", state, healthy_instance)
        assert not times("EdgewatchCyclesLate", state, healthy_instance)

    # -- the broken daemon: nothing delivered, every document still in the spool -----------
    b_cycles = sum(by(broken, "edgewatch_cycles_total", "delivered").values())
    assert b_cycles >= 2
    assert by(broken, "edgewatch_checks_total", "target", "error_type") == {
        (ACME, "dns.timeout"): b_cycles, ("acme-staging-v02.api.lab.test", "dns.timeout"): b_cycles}
    assert broken[("edgewatch_spool_documents", ())] == 2 * b_cycles
    assert by(broken, "edgewatch_elasticsearch_documents_total", "result") == {
        ("stored",): 0, ("already_stored",): 0, ("superseded",): 0}
    assert by(broken, "edgewatch_last_delivery_timestamp_seconds", "sink") == {}
    assert broken[("edgewatch_spool_oldest_document_age_seconds", ())] > \
        4 * broken[("edgewatch_cycle_interval_seconds", ())]
