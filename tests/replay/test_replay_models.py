"""The replay's pure parts on hand-made answers: the algorithm of issue 15 item 1 step by step,
the config's ``[[firewall_models]]`` (one-line problems naming the key), and the import rule."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.config import ConfigError, parse_config
from pipeline.config.firewall import FirewallModel
from pipeline.replay.build import replay_rows
from pipeline.replay.fqdn import replay_fqdn
from pipeline.replay.series import series_of
from pipeline.report.answers import AnswerRow

T0 = datetime(2026, 3, 2, tzinfo=UTC)
STEP = 900.0


def row(k: int, resolver: str, addrs: tuple[str, ...], ttl: int = 0, error: str | None = None,
        target: str = "api.test") -> AnswerRow:
    return AnswerRow(cycle=f"c{k}", time=T0 + timedelta(seconds=k * STEP + 1), target=target,
                     qtype="A", resolver=resolver, provider=None, ecs_subnet=None,
                     ecs_scope=None, addresses=addrs, ttl=ttl,
                     error=error if not addrs else None)


def walk(model: FirewallModel, fw: list, client: list):
    rows = [row(k, "fw", a, ttl=t) if a else row(k, "fw", (), error="dns.timeout")
            for k, (a, t) in enumerate(fw)]
    rows += [row(k, "c", a) for k, a in enumerate(client)]
    (series,) = series_of(rows)
    return replay_fqdn(model, series.cycles, ["c"], STEP)


def test_fully_and_partly_blocked_and_the_longest_stretch() -> None:
    m = FirewallModel("m", "fw", refresh_s=0.0)
    res = walk(m, [(("a", "b"), 0), (("c",), 0), (("c",), 0), (("c",), 0)],
               [("a", "b"), ("a", "c"), ("d",), ("d",)]).clients["c"]
    assert (res.checks, res.partly, res.fully) == (4, 1, 2)
    assert (res.longest_blocked, res.longest_fully) == (3, 2)
    assert res.missed == {"a", "d"}


def test_a_failed_poll_keeps_the_previous_set_and_retries_next_cycle() -> None:
    m = FirewallModel("m", "fw", refresh_s=2 * STEP)
    w = walk(m, [(("a",), 0), ((), 0), ((), 0), (("b",), 0), (("b",), 0)],
             [("a",), ("a",), ("b",), ("b",), ("b",)])
    # refresh at 0; due at 2 (failed: keeps {a}); retried at 3 → {b}; 4 not due
    assert (w.refreshes, w.failed_refreshes) == (2, 1)
    assert w.clients["c"].fully == 1  # cycle 2 only


def test_ttl_refresh_follows_the_served_ttl_with_a_floor() -> None:
    m = FirewallModel("m", "fw", refresh_s=None, min_refresh_s=STEP)
    # TTL 1800 at the first refresh: the next one is due two cycles later
    w = walk(m, [(("a",), 1800), (("b",), 0), (("b",), 0), (("c",), 0)],
             [("a",), ("b",), ("b",), ("c",)])
    assert w.refreshes == 3  # cycles 0, 2, 3 (TTL 0 → min_refresh: every cycle)
    assert w.clients["c"].fully == 1  # cycle 1


def test_the_cap_keeps_the_first_addresses_in_the_order_returned() -> None:
    m = FirewallModel("m", "fw", refresh_s=0.0, max_addresses=2)
    w = walk(m, [(("z", "y", "x"), 0)], [("x", "y", "z")])
    assert (w.clients["c"].partly, w.clients["c"].missed, w.largest_set) == (1, {"x"}, 2)


def test_keep_previous_holds_dropped_addresses_for_that_long() -> None:
    m = FirewallModel("m", "fw", refresh_s=0.0, keep_previous_s=2 * STEP)
    w = walk(m, [(("a",), 0), (("b",), 0), (("b",), 0), (("b",), 0)],
             [("a",), ("a",), ("a",), ("a",)])
    # a dropped at cycle 1: still allowed at 1 and 2 (< 1800 s), not at 3
    assert (w.clients["c"].fully, w.clients["c"].longest_fully) == (1, 1)


def test_replay_rows_per_target_and_the_choice() -> None:
    rows = [row(k, r, ("z",) if (r, k) == ("lag", 0) else ("a",), target=t)
            for k in range(3) for r in ("x", "lag") for t in ("one.test", "two.test")]
    rep = replay_rows(rows, [FirewallModel("m", "lag", refresh_s=0.0)])
    assert [t.target for t in rep.targets] == ["one.test", "two.test"]
    assert rep.interval_s == STEP and "lower bound" in rep.note
    one = rep.target("one.test")
    x = next(c for c in one.models[0].clients if c.client == "x")
    assert (x.checks, x.fully, x.blocked_s) == (3, 1, STEP)
    cells = {(c["firewall"], c["client"]): c["fully"] for c in one.choice["cells"]}
    assert cells == {("lag", "x"): 1, ("x", "lag"): 1}
    assert one.choice["best"] == "lag"  # a tie broken by name
    assert one.choice["jaccard"] == [{"a": "lag", "b": "x", "daily": [0.5], "mean": 0.5}]


BASE = {"targets": [{"name": "api.test"}], "resolvers": [{"name": "r1", "address": "127.0.0.1"}]}


def test_config_models_parse_and_problems_name_the_key() -> None:
    cfg = parse_config({**BASE, "firewall_models": [
        {"name": "fw", "resolver": "r1", "refresh": "ttl", "min_refresh": "10m",
         "max_addresses": 8, "keep_previous": "1h"},
        {"name": "fixed", "resolver": "r1", "refresh": "5m"}]}, env={})
    a, b = cfg.firewall_models
    assert (a.refresh_s, a.min_refresh_s, a.max_addresses, a.keep_previous_s) == (
        None, 600.0, 8, 3600.0)
    assert b.refresh_s == 300.0
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "firewall_models": [
            {"name": "x", "resolver": "nope", "refresh": "soon", "colour": 1},
            {"name": "y", "resolver": "r1", "kind": "magic"}]}, env={})
    keys = [k for k, _ in err.value.problems]
    assert keys == ["firewall_models[0].colour", "firewall_models[0].resolver",
                    "firewall_models[0].refresh", "firewall_models[1].kind"]
    assert all("\n" not in why for _, why in err.value.problems)


def test_the_replay_imports_no_probe_and_no_cycle() -> None:
    code = ("import sys, pipeline.replay.build, pipeline.replay.text, pipeline.replay.html, "
            "pipeline.report.by_target; print(sorted(m for m in sys.modules if m.startswith(("
            "'pipeline.probe', 'pipeline.cycle', 'pipeline.runs'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", out
