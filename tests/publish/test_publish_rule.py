"""The living list's rule (pipeline/publish/rule.py) against an independent model of it."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.publish.rule import BUCKET_S, ListRule, Sighting, TargetList, compute

T0 = datetime(2026, 3, 2, tzinfo=UTC)
TARGET = "acme.example"
ADDRS = [f"198.51.100.{i}" for i in range(1, 9)] + ["2001:db8:1::5", "2001:db8:2::7"]


def sight(ip: str, minute: float, checks: int = 1, target: str = TARGET,
          prefix24: str | None = None, prefix: str | None = None) -> Sighting:
    t = T0 + timedelta(minutes=minute)
    return Sighting(target, ip, prefix24, prefix, int(t.timestamp() // BUCKET_S), checks, t)


def listed(rows: list[Sighting], hold_h: float) -> set[str]:
    """The model: the addresses whose newest sighting is within hold of the newest of all."""
    newest = max(r.last for r in rows)
    last: dict[str, datetime] = {}
    for r in rows:
        last[r.ip] = max(last.get(r.ip, r.last), r.last)
    return {str(ipaddress.ip_network(ip)) for ip, t in last.items()
            if newest - t <= timedelta(hours=hold_h)}


polls = st.lists(st.tuples(st.sampled_from(ADDRS), st.integers(0, 48 * 4)), min_size=1,
                 max_size=60)


@settings(max_examples=200, deadline=None)
@given(polls, st.sampled_from([0.5, 1, 6, 24]))
def test_listed_exactly_while_last_seen_within_hold_of_the_newest(rows, hold_h) -> None:
    sightings = [sight(ip, q * 15) for ip, q in rows]
    rule = ListRule(hold_s=hold_h * 3600, window_s=48 * 3600, max_entries=100, floor=0.0)
    now = max(s.last for s in sightings) + timedelta(minutes=5)
    got = compute(TARGET, sightings, rule, now)
    assert set(got.cidrs()) == listed(sightings, hold_h)
    assert got.held is None and got.evidence_time == max(s.last for s in sightings)


def test_other_targets_sightings_are_not_this_targets_evidence() -> None:
    rows = [sight(ADDRS[0], 0), sight(ADDRS[1], 60, target="other.example")]
    got = compute(TARGET, rows, ListRule(floor=0), T0 + timedelta(hours=2))
    assert got.cidrs() == ["198.51.100.1/32"]


def test_an_outage_freezes_the_list_and_an_old_one_is_kept() -> None:
    rows = [sight(ADDRS[0], 0), sight(ADDRS[1], 600)]  # 10 h apart
    rule = ListRule(hold_s=3600, window_s=24 * 3600, floor=0)
    # no check for 20 h after the last one: the hold is measured from the newest check
    frozen = compute(TARGET, rows, rule, T0 + timedelta(hours=30))
    assert frozen.cidrs() == ["198.51.100.2/32"] and frozen.held is None
    # longer than the window without evidence: the previous list stays, and says why
    gone = compute(TARGET, rows, rule, T0 + timedelta(hours=40), previous=frozen)
    assert gone.cidrs() == frozen.cidrs() and "longer than the window" in (gone.held or "")
    assert compute(TARGET, [], rule, T0, previous=None).entries == ()


def test_cap_keeps_the_most_used_per_family() -> None:
    rows = [sight(ADDRS[i], 10, checks=10 - i) for i in range(5)]
    rows += [sight("2001:db8:1::5", 10, 1), sight("2001:db8:2::7", 10, 2)]
    got = compute(TARGET, rows, ListRule(max_entries=2, floor=0), T0 + timedelta(hours=1))
    assert got.cidrs() == ["198.51.100.1/32", "198.51.100.2/32", "2001:db8:1::5/128",
                           "2001:db8:2::7/128"]
    assert got.capped == 3
    assert got.cidrs(6) == ["2001:db8:1::5/128", "2001:db8:2::7/128"]


def test_granularity_uses_the_documents_prefixes_and_never_guesses_wider() -> None:
    rows = [sight("198.51.100.1", 0, prefix24="198.51.100.0/24", prefix="198.51.96.0/20"),
            sight("198.51.100.9", 0, prefix24="198.51.100.0/24"),
            sight("2001:db8:1::5", 0)]
    at = T0 + timedelta(minutes=10)
    p24 = compute(TARGET, rows, ListRule(by="prefix24", floor=0), at)
    assert p24.cidrs() == ["198.51.100.0/24", "2001:db8:1::/48"]
    ann = compute(TARGET, rows, ListRule(by="prefix", floor=0), at)
    assert ann.cidrs() == ["198.51.96.0/20", "198.51.100.9/32", "2001:db8:1::5/128"]


def test_the_floor_keeps_entries_while_the_evidence_thins() -> None:
    # 8 addresses, each checked every 15 minutes for 12 hours ...
    rows = [sight(ip, q * 15) for ip in ADDRS[:8] for q in range(48)]
    # ... then for 3 hours only one address is still checked (7 paths went quiet)
    rows += [sight(ADDRS[0], 12 * 60 + q * 15) for q in range(12)]
    rule = ListRule(hold_s=2 * 3600, window_s=24 * 3600, floor=0.5)
    previous = TargetList(TARGET, compute(TARGET, rows[:8 * 48], rule, T0 + timedelta(hours=12))
                          .entries, T0 + timedelta(hours=12))
    got = compute(TARGET, rows, rule, T0 + timedelta(hours=15), previous)
    assert len(got.entries) == 8 and got.held and "floor 50%" in got.held
    # without the floor the quiet addresses would have gone
    bare = compute(TARGET, rows, ListRule(hold_s=2 * 3600, floor=0.0), T0 + timedelta(hours=15),
                   previous)
    assert bare.cidrs() == ["198.51.100.1/32"] and bare.held is None


def test_a_migration_at_the_same_rate_is_not_held() -> None:
    old, new = ADDRS[:4], ADDRS[4:8]
    rows = [sight(ip, q * 15) for ip in old for q in range(48)]
    rows += [sight(ip, 12 * 60 + q * 15) for ip in new for q in range(12)]
    rule = ListRule(hold_s=2 * 3600, window_s=24 * 3600, floor=0.5)
    previous = compute(TARGET, rows[:4 * 48], rule, T0 + timedelta(hours=12))
    got = compute(TARGET, rows, rule, T0 + timedelta(hours=15), previous)
    assert got.held is None
    assert got.cidrs() == [f"{ip}/32" for ip in new]
