"""The metrics of ``edgewatch run`` without a lab: counting, publishing, the spool's age, the
configuration and the endpoint. Documents are built here with the fields the cycle writes
(``edgewatch.allowlist.*`` as the allowlists part adds them), so every figure is known."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.config import ConfigError, parse_config
from pipeline.cycle import CycleStats
from pipeline.documents import Record
from pipeline.metrics.daemon import Metrics
from pipeline.metrics.figures import cycle_figures
from pipeline.metrics.server import MetricsError
from pipeline.metrics.spool_age import SpoolAge

ROOT = Path(__file__).resolve().parents[2]
T1, T2 = "api.example", "staging.example"
BASE = {"observer": {"name": "probe-1"}, "targets": [{"name": T1}, {"name": T2}],
        "resolvers": [{"name": "r1", "address": "127.0.0.1", "port": 1},
                      {"name": "r2", "address": "127.0.0.1", "port": 2}]}


def check(target: str, resolver: str, address: str | None = None, error: str | None = None,
          denied: tuple[str, ...] = (), allowed: tuple[str, ...] = ()) -> Record:
    doc: dict = {"dns.question.name": target, "edgewatch.resolver.name": resolver,
                 "event.outcome": "failure" if error else "success"}
    if error:
        doc["error.type"] = error
    if address:
        doc["destination.ip"] = address
        doc["edgewatch.allowlist.allowed"] = list(allowed)
        doc["edgewatch.allowlist.denied"] = list(denied)
    return Record("check", f"{target}/{resolver}/{address}", doc)


def cycle_a() -> list[Record]:
    """r1 answers T1 with two addresses, one outside list "edge"; r2 times out on T1."""
    return [check(T1, "r1", "192.0.2.1", allowed=("edge", "all")),
            check(T1, "r1", "192.0.2.9", "tcp.timeout", denied=("edge",), allowed=("all",)),
            check(T1, "r2", error="dns.timeout"),
            check(T2, "r1", "192.0.2.5", allowed=("edge", "all")),
            Record("run", "run-1", {"edgewatch.run.id": "run-1"})]


def scrape(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def stats(delivered: bool = True, seconds: float = 0.4,
          started: datetime = datetime(2026, 3, 2, 0, 15, 3, tzinfo=UTC)) -> CycleStats:
    return CycleStats(started=started, real_seconds=seconds, delivered=delivered)


def test_a_cycles_documents_are_counted_by_configured_names_never_by_address() -> None:
    fig = cycle_figures(cycle_a(), [(T1, "r1"), (T1, "r2"), (T2, "r1"), (T2, "r2")])
    assert fig is not None
    assert fig.checks == {(T1, "r1", "success", ""): 1, (T1, "r1", "failure", "tcp.timeout"): 1,
                          (T1, "r2", "failure", "dns.timeout"): 1, (T2, "r1", "success", ""): 1}
    assert fig.addresses == {(T1, "r1"): 2, (T1, "r2"): 0, (T2, "r1"): 1, (T2, "r2"): 0}
    # every list a document was judged against, for every pair that had a document: 0 or more
    assert fig.denied == {("edge", T1, "r1"): 1, ("edge", T1, "r2"): 0, ("edge", T2, "r1"): 0,
                          ("all", T1, "r1"): 0, ("all", T1, "r2"): 0, ("all", T2, "r1"): 0}
    labels = {v for key in [*fig.checks, *fig.addresses, *fig.denied] for v in key}
    assert not any(v.startswith("192.0.2.") for v in labels)
    assert cycle_figures([Record("run", "run-1", {})]) is None  # the journal re-sent at start


def test_counters_add_up_and_last_cycle_gauges_are_replaced() -> None:
    m = Metrics(parse_config(BASE, env={}), started_at=1000.0)
    m.scheduled(datetime(2026, 3, 2, 0, 15, tzinfo=UTC))
    asyncio.run(m.tap.write(cycle_a()))
    m.cycle_done(stats(seconds=0.4))
    second = [check(T1, "r1", "192.0.2.1", allowed=("edge", "all")),
              check(T1, "r2", "192.0.2.1", allowed=("edge", "all"))]
    asyncio.run(m.tap.write(second))
    m.cycle_done(stats(delivered=False, seconds=3.0,
                       started=datetime(2026, 3, 2, 0, 30, 7, tzinfo=UTC)))
    got = scrape(m)
    ok1 = ("edgewatch_checks_total", (("error_type", ""), ("outcome", "success"),
                                      ("resolver", "r1"), ("target", T1)))
    assert got[ok1] == 2
    timeout = (("error_type", "dns.timeout"), ("outcome", "failure"), ("resolver", "r2"),
               ("target", T1))
    assert got[("edgewatch_checks_total", timeout)] == 1
    assert ("edgewatch_last_cycle_checks", timeout) not in got  # gone with the cycle it was in
    assert got[("edgewatch_last_cycle_checks", ok1[1])] == 1
    assert got[("edgewatch_checks_denied_total",
                (("list", "edge"), ("resolver", "r1"), ("target", T1)))] == 1
    assert got[("edgewatch_last_cycle_checks_denied",
                (("list", "edge"), ("resolver", "r1"), ("target", T1)))] == 0
    assert got[("edgewatch_last_cycle_answer_addresses",
                (("resolver", "r2"), ("target", T1)))] == 1
    assert got[("edgewatch_last_cycle_answer_addresses",
                (("resolver", "r2"), ("target", T2)))] == 0
    assert got[("edgewatch_cycles_total", (("delivered", "true"),))] == 1
    assert got[("edgewatch_cycles_total", (("delivered", "false"),))] == 1
    assert got[("edgewatch_last_cycle_delivered", ())] == 0
    assert got[("edgewatch_last_cycle_duration_seconds", ())] == 3.0
    assert got[("edgewatch_cycle_duration_seconds_bucket", (("le", "0.5"),))] == 1
    assert got[("edgewatch_cycle_duration_seconds_bucket", (("le", "5"),))] == 2
    assert got[("edgewatch_cycle_duration_seconds_sum", ())] == pytest.approx(3.4)
    assert got[("edgewatch_last_cycle_lateness_seconds", ())] == 7.0  # real clock: speed 1
    assert got[("edgewatch_cycle_interval_seconds", ())] == 900.0
    assert got[("edgewatch_start_timestamp_seconds", ())] == 1000.0
    # only the delivered cycle stamps the ndjson store's delivery
    assert ("edgewatch_last_delivery_timestamp_seconds", (("sink", "ndjson"),)) in got
    info = [k for k in got if k[0] == "edgewatch_build_info"]
    assert dict(info[0][1])["observer"] == "probe-1" and dict(info[0][1])["schema"] == "2"


def test_a_cycle_is_seen_whole_or_not_at_all() -> None:
    """Its documents are counted as the sinks are written, shown only when it has finished."""
    m = Metrics(parse_config(BASE, env={}), started_at=1000.0)
    asyncio.run(m.tap.write(cycle_a()))
    got = scrape(m)
    assert got[("edgewatch_cycles_total", (("delivered", "true"),))] == 0
    assert not [k for k in got if k[0] == "edgewatch_checks_total"]
    assert ("edgewatch_last_cycle_lateness_seconds", ()) not in got  # --once: no grid
    assert got[("edgewatch_last_cycle_end_timestamp_seconds", ())] == 1000.0
    m.cycle_done(stats())
    assert scrape(m)[("edgewatch_cycles_total", (("delivered", "true"),))] == 1


def test_lateness_is_real_seconds_behind_the_nearest_slot_under_a_scenario_clock() -> None:
    data = {**BASE, "clock": {"start": "2026-03-02T00:00:00Z", "anchor": time.time(),
                                "speed": 900.0}}
    m = Metrics(parse_config(data, env={}))
    origin = datetime(2026, 3, 2, 0, 15, tzinfo=UTC)
    m.scheduled(origin)
    for offset, real in ((timedelta(minutes=30, seconds=90), 0.1), (timedelta(seconds=-2), 0.0)):
        asyncio.run(m.tap.write(cycle_a()))
        m.cycle_done(stats(started=origin + offset))
        assert scrape(m)[("edgewatch_last_cycle_lateness_seconds", ())] == pytest.approx(real)
    assert scrape(m)[("edgewatch_cycle_interval_seconds", ())] == 1.0


def test_skipped_slots_are_counted_by_reason() -> None:
    m = Metrics(parse_config(BASE, env={}))
    m.skipped("late")
    m.skipped("late")
    m.cycle_done(CycleStats(started=datetime.now(UTC), clock_behind_s=3.0))  # run --once
    got = scrape(m)
    assert got[("edgewatch_cycles_skipped_total", (("reason", "late"),))] == 2
    assert got[("edgewatch_cycles_skipped_total", (("reason", "clock_behind"),))] == 1
    assert got[("edgewatch_cycles_total", (("delivered", "true"),))] == 0


def test_the_oldest_undelivered_document_ages_until_its_cycle_is_delivered() -> None:
    age = SpoolAge(started_at=100.0)
    assert age.age(105.0, pending=3) == 5.0  # left by an earlier process: as old as the start
    age.pushed(110.0, spooled=4, pending=7)  # 3 old + this cycle's 4
    age.pushed(120.0, spooled=9, pending=12)
    assert age.age(121.0, pending=12) == 21.0
    assert age.age(121.0, pending=9) == 11.0  # the old three delivered: the first cycle's turn
    assert age.age(122.0, pending=6) == 12.0  # one of the first cycle still waits
    assert age.age(122.0, pending=4) == 2.0  # the first cycle delivered, one of the second
    assert age.age(123.0, pending=0) == 0.0
    age.pushed(130.0, spooled=11, pending=2)
    assert age.age(131.0, pending=2) == 1.0


@pytest.mark.parametrize(("listen", "problem"), [
    ("127.0.0.1", "'127.0.0.1' has no port: ADDRESS:PORT"),
    ("localhost:9464", "'localhost' is not an IP address"),
    ("127.0.0.1:0", "port 0 is out of range"),
    (9464, "must be a string"),
])
def test_metrics_listen_is_validated_at_start(listen: object, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "metrics": {"listen": listen}}, env={})
    [(key, reason)] = err.value.problems
    assert key == "metrics.listen" and problem in reason


def test_metrics_are_off_by_default_and_listen_takes_an_override() -> None:
    assert parse_config(BASE, env={}).metrics_listen is None
    cfg = parse_config(BASE, env={"EDGEWATCH_METRICS__LISTEN": '"[::1]:9464"'})
    assert cfg.metrics_listen == ("::1", 9464)
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "metrics": {"port": 9464}}, env={})
    assert err.value.problems[0][0] == "metrics.port"


def test_the_endpoint_serves_the_registry_and_refuses_a_taken_port() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        m = Metrics(parse_config({**BASE, "metrics": {"listen": f"127.0.0.1:{port}"}}, env={}))
        with pytest.raises(MetricsError, match=rf"^metrics.listen 127.0.0.1:{port}: address "
                           "already in use"):
            m.start()
    finally:
        taken.close()
    m.start()
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b"edgewatch_cycles_total" in body and b"_created" not in body
    finally:
        m.stop()


def test_run_refuses_a_taken_metrics_port_in_one_line(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    config = tmp_path / "edgewatch.toml"
    config.write_text(f"""
[observer]
name = "probe-1"
[state]
dir = "{tmp_path / 'state'}"
[store]
dir = "{tmp_path / 'data'}"
[metrics]
listen = "127.0.0.1:{port}"
[[targets]]
name = "{T1}"
[[resolvers]]
name = "r1"
address = "127.0.0.1"
port = 9
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEWATCH_", "ES_"))}
    try:
        proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(config),
                               "--once"], capture_output=True, text=True, timeout=60, env=env,
                              cwd=ROOT)
    finally:
        taken.close()
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"edgewatch run: metrics.listen 127.0.0.1:{port}: "
                                        "address already in use (another process listens "
                                        "there)"]
    assert not list(tmp_path.rglob("*.ndjson"))  # nothing probed, nothing written


def test_the_example_alert_rules_pass_promtool() -> None:
    rules = ROOT / "config" / "edgewatch.alerts.yml"
    proc = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 4 rules found" in proc.stdout
