"""The address fold of ``evidence.read`` against the one-row fold it replaced.

The fold derives the whole, the unknown attributions and the /24 and prefix counts from folded
figures instead of folding every row into each of them; a model-based comparison with random
rows (days outside the window, rows without successes, addresses without a network row,
several addresses in one /24) says it gives the same evidence.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.report.evidence import Addresses, Evidence, _fold_addresses
from pipeline.report.model import ALL, GRANULARITIES
from pipeline.report.networks import Attribution
from pipeline.report.rows import AddressRow

IPS = [f"192.0.2.{i}" for i in range(1, 7)] + ["198.51.100.9", "2001:db8::5", "2001:db8:1::7"]
KNOWN = {ip: Attribution(prefix24=".".join(ip.split(".")[:3]) + ".0/24" if "." in ip
                         else "2001:db8::/48", prefix="192.0.2.0/23" if "192.0.2" in ip
                         else ip + "/32", prefix_known=True, asn=64500, domains=("e.example",))
         for ip in IPS[:5]}


def empty(days: int) -> Evidence:
    return Evidence(days=days, attr=dict(KNOWN), addresses=defaultdict(lambda: Addresses(days)),
                    daily_ok={g: [Counter() for _ in range(days)] for g in GRANULARITIES},
                    outcomes={}, timings={}, runs={}, interval=(None, "unknown"))


def reference(ev: Evidence, rows: list[AddressRow]) -> None:
    """Every row into its resolver's and the whole's accumulators and all three granularities."""
    for row in rows:
        a = ev.attr.get(row.ip) or ev.attr.setdefault(row.ip, Attribution.unknown(row.ip))
        for acc in (ev.addresses[row.resolver], ev.addresses[ALL]):
            acc.ok_by_ip[row.ip] += row.ok
            if 0 <= row.day < ev.days:
                acc.daily[row.day].add(row.ip)
        if row.ok and 0 <= row.day < ev.days:
            for g, key in (("ip", row.ip), ("prefix24", a.prefix24), ("prefix", a.prefix)):
                ev.daily_ok[g][row.day][key] += row.ok


def figures(ev: Evidence) -> dict:
    return {
        "attr": ev.attr,
        "addresses": {name: (dict(a.ok_by_ip), a.daily) for name, a in ev.addresses.items()},
        "daily_ok": {g: [dict(c) for c in days] for g, days in ev.daily_ok.items()},
    }


rows_strategy = st.lists(st.builds(
    AddressRow, day=st.integers(-1, 4), resolver=st.sampled_from(["r1", "r2", "r3"]),
    ip=st.sampled_from(IPS), documents=st.integers(1, 50), ok=st.integers(0, 50)),
    max_size=80)


@settings(max_examples=300, deadline=None)
@given(rows=rows_strategy, days=st.integers(1, 4))
def test_the_fold_gives_what_folding_each_row_gives(rows: list[AddressRow], days: int) -> None:
    rows = [r for r in rows if r.ok <= r.documents]
    mine, ref = empty(days), empty(days)
    _fold_addresses(mine, rows)
    reference(ref, rows)
    assert figures(mine) == figures(ref)
    assert set(mine.addresses) == set(ref.addresses)  # no whole without rows


@pytest.mark.parametrize("seed", range(3))
def test_the_fold_at_a_report_s_scale(seed: int) -> None:
    """20 resolvers × 500 addresses × 15 days, as a build over 10M checks folds."""
    rnd = random.Random(seed)
    ips = [f"10.{i // 250}.{i % 250}.1" for i in range(500)]
    rows = [AddressRow(day=d, resolver=f"r{r}", ip=ip, documents=10, ok=rnd.choice((0, 9, 10)))
            for d in range(15) for r in range(20) for ip in rnd.sample(ips, 25)]
    mine, ref = empty(15), empty(15)
    _fold_addresses(mine, rows)
    reference(ref, rows)
    assert figures(mine) == figures(ref)
