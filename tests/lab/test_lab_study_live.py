"""The full 14-resolver study lab starts, and every resolver answers as the truth says."""

from __future__ import annotations

import asyncio
from pathlib import Path

from labtest_helpers import next_grid, poll_grid

from lab.stack import LabStack


def test_study_lab_every_resolver_matches_truth(tmp_path: Path) -> None:
    with LabStack("study-14d", speed=600, run_dir=tmp_path / "study") as lab:
        assert len(lab.resolvers) == 14
        t0 = next_grid(lab, lead_real=1.0)
        times = [t0, t0 + lab.scenario.grid]
        observed = asyncio.run(poll_grid(lab, times, timeout=1.0))
        for (resolver, target), answers in observed.items():
            expected = lab.truth.observe(resolver, target, times)
            got = [(a.addresses, a.error_type) for a in answers]
            assert got == [(e.addresses, e.error_type) for e in expected], (resolver, target)
        acme = "acme-v02.api.lab.test"
        ap = observed[("lab-nextdns-ap", acme)][0].addresses
        eu = observed[("lab-google-ecs-eu", acme)][0].addresses
        assert ap and all(a.startswith("127.62.") for a in ap)
        assert eu and all(a.startswith("127.61.") for a in eu)
