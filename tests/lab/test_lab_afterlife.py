"""The afterlife scenario: edges that change behaviour at a scenario time, and the truth of the
checks a perfect observer makes of retired addresses (docs/LAB.md "Afterlife")."""

from __future__ import annotations

import asyncio
import socket
import ssl
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from lab.edges import EdgeServer
from lab.pki import generate
from lab.scenario import SCENARIO_DIR, ScenarioError, load_scenario
from lab.truth import GroundTruth, poll_times

AFTERLIFE = (SCENARIO_DIR / "afterlife.toml").read_text()
TARGET = "acme-v02.api.lab.test"


def test_the_truth_checks_each_retired_address_as_designed() -> None:
    s = load_scenario("afterlife")
    truth = GroundTruth(s, 900)
    checks = truth.afterlife(TARGET, poll_times(s.start, s.start + 10 * 3600, 900), "4h52m30s")
    got = Counter((c.address, c.outcome) for c in checks)
    # retired at the 3h15 poll; checked from 3h30 while younger than 4h52m30s (last: 8h00)
    assert got == {("127.60.0.11", None): 19,
                   ("127.60.0.12", None): 3, ("127.60.0.12", "tcp.refused"): 16,
                   ("127.60.0.13", None): 7, ("127.60.0.13", "tls.verify"): 12,
                   ("127.60.0.14", None): 11}  # back at 6h15: a new run, no more afterlife
    assert {c.ended.timestamp() - s.start for c in checks} == {3 * 3600 + 900}
    assert truth.edge_outcome("127.60.0.12") is None
    assert truth.edge_outcome("127.60.0.12", s.start + 4 * 3600 + 450) == "tcp.refused"


@pytest.mark.parametrize(("old", "new", "key"), [
    ('at = "4h7m30s"', 'at = "4h"', "edges.changes[0].at"),
    ('address = "127.60.0.12"', 'address = "127.60.0.99"', "edges.changes[0].address"),
    ('behaviour = "refuse"', 'behaviour = "vanish"', "edges.changes[0].behaviour"),
    ('behaviour = "refuse"', 'behaviour = "refuse"\nwhen = "1h"', "edges.changes[0].when"),
])
def test_edge_changes_are_validated_naming_the_key(tmp_path: Path, old: str, new: str,
                                                   key: str) -> None:
    assert old in AFTERLIFE
    path = tmp_path / "s.toml"
    path.write_text(AFTERLIFE.replace(old, new, 1))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(err.value).startswith(key), str(err.value)


def _handshake(address: str, port: int, ca: Path) -> str:
    """What a client verifying the target's name sees: ok, tls.verify or tcp.refused."""
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        with socket.create_connection((address, port), timeout=2) as raw, \
                ctx.wrap_socket(raw, server_hostname=TARGET):
            return "ok"
    except ssl.SSLCertVerificationError:
        return "tls.verify"
    except ConnectionRefusedError:
        return "tcp.refused"


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def test_an_edge_switches_behaviour_at_its_scenario_instant() -> None:
    """The edge server on a clock 3h59m into the scenario at 600x: .12 refuses and .13 presents
    another certificate once the clock passes 4h07m30s / 5h07m30s (0.75 s / 6.75 s real)."""
    s = load_scenario("afterlife")
    t0, speed = s.start + 3 * 3600 + 59 * 60, 600.0
    anchor = time.time()

    def now() -> float:
        return t0 + (time.time() - anchor) * speed

    def real_at(t: float) -> float:
        return anchor + (t - t0) / speed

    async def run(run_dir: Path) -> list[dict[str, str]]:
        certs = generate(run_dir / "pki", [TARGET], s.wrong_name)
        port = _free_port("127.60.0.12")
        server = EdgeServer(s, certs, port, real_at, now)
        await server.start()
        seen = []
        try:
            for at in (4 * 3600, 4 * 3600 + 900, 5 * 3600 + 900):  # before, after, after both
                await asyncio.sleep(max(0.0, real_at(s.start + at) - time.time()))
                seen.append({a: await asyncio.to_thread(_handshake, a, port,
                                                        certs.ca)
                             for a in ("127.60.0.11", "127.60.0.12", "127.60.0.13")})
        finally:
            server.close()
        return seen

    with tempfile.TemporaryDirectory() as tmp:
        seen = asyncio.run(run(Path(tmp)))
    assert seen == [
        {"127.60.0.11": "ok", "127.60.0.12": "ok", "127.60.0.13": "ok"},
        {"127.60.0.11": "ok", "127.60.0.12": "tcp.refused", "127.60.0.13": "ok"},
        {"127.60.0.11": "ok", "127.60.0.12": "tcp.refused", "127.60.0.13": "tls.verify"},
    ]
