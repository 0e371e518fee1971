"""The living list as a replay model: the lag it really has, hold, the warm-up, the config.

Hand-made answers, each cycle one resolver's answer and which of its addresses verified; the
expected blocks are worked out in the comments from the rule in docs/LIVING_LIST.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.config import ConfigError, parse_config
from pipeline.config.firewall import LIVING, FirewallModel
from pipeline.replay.build import replay_rows
from pipeline.replay.living import replay_living
from pipeline.replay.series import series_of
from pipeline.report.answers import AnswerRow

T0 = datetime(2026, 3, 2, tzinfo=UTC)
STEP = 900.0
A, B = "192.0.2.1", "192.0.2.2"


def row(k: int, resolver: str, addrs: tuple[str, ...], verified: tuple[str, ...] | None = None,
        ) -> AnswerRow:
    return AnswerRow(cycle=f"c{k}", time=T0 + timedelta(seconds=k * STEP + 1), target="api.test",
                     qtype="A", resolver=resolver, provider=None, ecs_subnet=None,
                     ecs_scope=None, addresses=addrs, ttl=60,
                     error=None if addrs else "dns.timeout",
                     verified=frozenset(addrs if verified is None else verified))


def living(**kw) -> FirewallModel:
    base = {"refresh_s": STEP, "hold_s": 2 * STEP, "window_s": 24 * 3600.0, "floor": 0.0}
    return FirewallModel("live", "", kind=LIVING, **{**base, **kw})


def replay(model: FirewallModel, answers: list[tuple[str, ...]],
           verified: list[tuple[str, ...] | None] | None = None):
    rows = [row(k, "c", a, (verified or [None] * len(answers))[k])
            for k, a in enumerate(answers)]
    (series,) = series_of(rows)
    return replay_living(model, series.cycles, ["c"], STEP)


def test_a_new_address_blocks_until_the_next_fetch_and_leaves_after_hold() -> None:
    # cycle 0: warm-up (nothing stored yet). 1: {a} fetched from cycle 0 → a allowed.
    # 2: answer b (new) → fully blocked; 3-5: b allowed; a was last verified at cycle 1 and
    # the newest check at cycle 5's fetch is cycle 4's (2700 s > hold), so a is out at 5 and
    # its return at 6 is blocked.
    answers = [(A,), (A,), (B,), (B,), (B,), (B,), (A,)]
    w = replay(living(), answers)
    c = w.clients["c"]
    assert (c.checks, c.fully, c.partly) == (6, 2, 0)  # counted: cycles 1..6
    assert c.missed == {A, B}
    assert (w.refreshes, w.failed_refreshes) == (7, 1)


def test_unverified_addresses_are_never_listed() -> None:
    # b answers every time but its certificate never verifies: every answer with b is partly
    # blocked (a client may pick b), never fully while a verifies
    answers = [(A, B)] * 4
    w = replay(living(), answers, verified=[(A,)] * 4)
    c = w.clients["c"]
    assert (c.checks, c.partly, c.fully) == (3, 3, 0) and c.missed == {B}


def test_prefix24_lists_the_neighbours_and_refresh_sets_the_lag() -> None:
    answers = [("10.0.0.1",), ("10.0.0.2",), ("10.0.1.1",), ("10.0.1.1",), ("10.0.1.2",)]
    by_ip = replay(living(), answers).clients["c"]
    by_24 = replay(living(by="prefix24"), answers).clients["c"]
    assert by_ip.fully == 3  # .0.2, .1.1 and .1.2 each new at their cycle
    assert by_24.fully == 1  # only 10.0.1.0/24 is new (cycle 2); .1.2 is in it at cycle 4
    slow = replay(living(refresh_s=3 * STEP), answers).clients["c"]
    # fetches at 0 (no evidence yet: the warm-up lasts until a fetch finds some, so 1 and 2
    # are not counted) and 3 ({.0.1, .0.2, .1.1}): 3 allowed, 4 (.1.2, new) blocked
    assert (slow.checks, slow.fully) == (2, 1)


def test_the_replay_report_has_a_living_model_beside_an_fqdn_object() -> None:
    rows = [row(k, "c", (A,) if k < 4 else (B,)) for k in range(8)]
    rows += [row(k, "fw", (A,) if k < 6 else (B,)) for k in range(8)]
    fqdn = FirewallModel("fqdn", "fw", refresh_s=0.0)
    rep = replay_rows(rows, [living(), fqdn], STEP)
    (t,) = rep.targets
    live, obj = (m for m in t.models)
    assert live.kind == "living" and obj.kind == "fqdn"
    c_live = next(c for c in live.clients if c.client == "c")
    c_obj = next(c for c in obj.clients if c.client == "c")
    # the firewall resolver lags the client by two cycles: fqdn blocks cycles 4 and 5; the
    # living list (built from both resolvers' verified checks) blocks only cycle 4
    assert (c_obj.fully, c_live.fully) == (2, 1)


BASE = {
    "targets": [{"name": "api.test"}],
    "resolvers": [{"name": "r1", "address": "127.0.0.1"}],
}


@pytest.mark.parametrize(("entry", "key", "reason"), [
    ({"kind": "living", "name": "l", "resolver": "r1"}, "firewall_models[0].resolver",
     "unknown key"),
    ({"kind": "living", "name": "l", "by": "prefix"}, "firewall_models[0].by",
     "must be one of ip, prefix24"),
    ({"kind": "living", "name": "l", "hold": "2d"}, "firewall_models[0].window",
     "at least hold"),
    ({"kind": "living", "name": "l", "refresh": 0}, "firewall_models[0].refresh",
     "positive interval"),
])
def test_living_model_problems_name_the_key(entry: dict, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "firewall_models": [entry]}, env={})
    assert any(k == key and reason in why for k, why in err.value.problems), err.value.problems


def test_a_living_model_parses_with_the_servers_defaults() -> None:
    cfg = parse_config({**BASE, "firewall_models": [
        {"kind": "living", "name": "l", "refresh": "5m", "hold": "6h"}]}, env={})
    (m,) = cfg.firewall_models
    assert (m.kind, m.refresh_s, m.hold_s, m.window_s, m.by) == (LIVING, 300.0, 21600.0,
                                                                 86400.0, "ip")


def test_a_static_list_blocks_what_it_lacks_from_the_start(tmp_path) -> None:
    listed = tmp_path / "allow.nft"
    listed.write_text("table inet edgewatch {\n\tset allow4 {\n\t\ttype ipv4_addr\n"
                      "\t\tflags interval\n\t\telements = {\n\t\t\t192.0.2.0/30\n\t\t}\n\t}\n}\n")
    cfg = parse_config({**BASE, "firewall_models": [
        {"kind": "static", "name": "s", "file": str(listed)}]}, env={})
    (static,) = cfg.firewall_models
    # A and B are in 192.0.2.0/30; 192.0.2.9 is not: every answer with it is blocked
    rows = [row(k, "c", (A, "192.0.2.9") if k % 2 else (B,)) for k in range(6)]
    rep = replay_rows(rows, [static, living()], STEP)
    (t,) = rep.targets
    s, live = t.models
    cs = next(c for c in s.clients if c.client == "c")
    assert (s.kind, cs.checks, cs.partly, cs.fully) == ("static", 6, 3, 0)
    assert cs.missed_addresses == ["192.0.2.9"] and s.refreshes == 1
    # the living list (everything verifies here) misses the new pair once, then has it
    cl = next(c for c in live.clients if c.client == "c")
    assert (live.kind, cl.checks, cl.fully, cl.partly) == ("living", 5, 1, 0)


def test_a_static_list_that_does_not_parse_is_named_at_start(tmp_path) -> None:
    bad = tmp_path / "allow.txt"
    bad.write_text("192.0.2.0/24\nnot-an-address\n")
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "firewall_models": [
            {"kind": "static", "name": "s", "file": str(bad)}]}, env={})
    ((key, why),) = err.value.problems
    assert key == "firewall_models[0].file" and f"{bad}:2:" in why
