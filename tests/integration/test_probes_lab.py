"""Each probe against the real lab servers, and the CLI a person uses at a terminal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.config import Resolver, load_config
from pipeline.probe.connect import ConnectSpec, probe_connect, tls_contexts
from pipeline.probe.dns import probe_dns
from pipeline.probe.rdns import ReverseLookup
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration


lab = lab_fixture("quick", speed=900.0, scope="module")


def _resolver(lab: LabStack, name: str) -> Resolver:
    cfg = load_config(lab.config_path, env={})
    return next(r for r in cfg.resolvers if r.name == name)


def _answers_during(lab: LabStack, resolver: str, host: str, start: float) -> set[frozenset[str]]:
    """Every address set the truth gives between `start` and now, in scenario time.

    At 900x one real second is a quarter of a scenario hour, so a rotation can fall between
    the query and the comparison (a CI run saw it): the probe's answer must be one of the
    sets served while it was in flight, sampled each scenario minute and at both ends.
    """
    end = lab.clock.now()
    steps = max(1, int((end - start) // 60) + 1)
    return {lab.truth.answer(resolver, host, start + (end - start) * i / steps).addresses
            for i in range(steps + 1)}


def test_dns_probe_records_chain_ttl_and_truth(lab: LabStack) -> None:
    r = _resolver(lab, "lab-google-a")
    target = lab.scenario.targets[0]
    start = lab.clock.now()
    res = asyncio.run(probe_dns(r, target.name, "A", 2.0))
    assert res.ok and res.rcode == "NOERROR" and "RA" in res.flags
    assert res.cname_chain == (target.name, *target.chain[1:])
    assert res.address_set in _answers_during(lab, "lab-google-a", target.name, start)
    assert {a.ttl for a in res.addresses} == {int(target.ttl // lab.speed)}


def test_dns_probe_classifies_nxdomain_timeout_and_falls_back_to_tcp(lab: LabStack) -> None:
    r = _resolver(lab, "lab-google-a")
    nx = asyncio.run(probe_dns(r, "nothing-here.lab.test", "A", 2.0))
    assert (nx.rcode, nx.error_type, nx.ok) == ("NXDOMAIN", "dns.nxdomain", False)
    big = asyncio.run(probe_dns(r, "big.lab.test", "TXT", 2.0))
    assert big.tcp_fallback and big.rcode == "NOERROR"
    silent = Resolver("silent", "127.0.0.1", port=_silent_port())
    t = asyncio.run(probe_dns(silent, "acme-v02.api.lab.test", "A", 0.2))
    assert t.error_type == "dns.timeout" and t.rcode is None


def test_dns_probe_over_tcp_gives_the_same_answer(lab: LabStack) -> None:
    udp = _resolver(lab, "lab-google-a")
    tcp = Resolver("tcp", udp.address, udp.port, transport="tcp")
    host = lab.scenario.targets[0].name
    a = asyncio.run(probe_dns(udp, host, "A", 2.0))
    start = lab.clock.now()
    b = asyncio.run(probe_dns(tcp, host, "A", 2.0))
    assert a.ok and b.ok and a.cname_chain == b.cname_chain
    assert b.address_set in _answers_during(lab, udp.name, host, start)


def test_dns_over_tls_is_verified_against_the_trust_store(lab: LabStack) -> None:
    from lab.pki import DOT_NAME

    name, (address, port) = next(iter(lab.dot_endpoints.items()))
    host = lab.scenario.targets[0].name
    ctx = tls_contexts(lab.ca_path)[0]
    dot = Resolver("dot", address, port, transport="dot", server_name=DOT_NAME)
    start = lab.clock.now()
    res = asyncio.run(probe_dns(dot, host, "A", 3.0, ssl_context=ctx))
    assert res.ok, res
    assert res.address_set in _answers_during(lab, name, host, start)
    wrong = Resolver("dot", address, port, transport="dot", server_name="other.lab.test")
    bad = asyncio.run(probe_dns(wrong, host, "A", 3.0, ssl_context=ctx))
    assert bad.error_type == "dns.network" and "certificate" in (bad.error_message or "").lower()


def test_dns_over_https_is_verified_against_the_trust_store(lab: LabStack) -> None:
    name, (url, address) = next(iter(lab.doh_urls.items()))
    host = lab.scenario.targets[0].name
    ctx = tls_contexts(lab.ca_path)[0]
    port = int(url.split(":")[2].split("/")[0])
    doh = Resolver("doh", address, port, transport="doh", url=url)
    start = lab.clock.now()
    res = asyncio.run(probe_dns(doh, host, "A", 3.0, ssl_context=ctx))
    assert res.ok, res
    assert res.address_set in _answers_during(lab, name, host, start)
    assert res.cname_chain[-1] == lab.scenario.targets[0].chain[-1]
    untrusted = asyncio.run(probe_dns(doh, host, "A", 3.0))  # system store: lab CA unknown
    assert untrusted.error_type == "dns.network", untrusted


def _silent_port() -> int:
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    _silent_port.keep = s  # type: ignore[attr-defined]  # stays bound, never answers
    return s.getsockname()[1]


def test_ecs_subnet_is_sent_and_its_scope_recorded(lab: LabStack) -> None:
    """The authoritative server echoes the scope; pdns-recursor (like many resolvers) does not
    echo ECS to its clients, so through it only the answer tells which view served it."""
    via = _resolver(lab, "lab-quad9-ecs")
    assert via.client_subnet
    host = lab.scenario.targets[0].name
    auth = Resolver("auth", lab.auth[0], lab.auth[1], client_subnet=via.client_subnet)
    direct = asyncio.run(probe_dns(auth, host, "A", 2.0))
    assert direct.ok and direct.ecs_source_prefix == 24 and direct.ecs_scope_prefix == 24
    start = lab.clock.now()
    res = asyncio.run(probe_dns(via, host, "A", 2.0))
    assert res.address_set in _answers_during(lab, via.name, host, start)


def test_connect_probe_outcomes_match_each_edge_behaviour(lab: LabStack) -> None:
    contexts = tls_contexts(lab.ca_path)
    host = lab.scenario.targets[0].name
    behaviours = dict(lab.scenario.edge_behaviour)
    ok_edge = next(a for a in lab.truth.authoritative("lab-google-a", host, lab.clock.now()))
    behaviours.setdefault(ok_edge, "ok")
    assert {"ok", "blackhole", "refuse", "wrong_name", "expired", "tls_abort"} <= set(
        behaviours.values())

    async def all_edges():
        return await asyncio.gather(*(
            probe_connect(a, lab.edge_port, host,
                          ConnectSpec(contexts, 0.5, 1.0, "/directory", 1.0))
            for a in behaviours))

    for address, result in zip(behaviours, asyncio.run(all_edges()), strict=True):
        assert result.error_type == lab.truth.edge_outcome(address), (address, result)
        if behaviours[address] == "ok":
            assert result.tls_verified and result.http_status == 200
            assert result.certificate and host in result.certificate.alt_names
        if behaviours[address] in ("wrong_name", "expired"):
            assert result.tls_established and not result.tls_verified
            assert result.certificate is not None and result.tls_version


def test_reverse_lookup_names_the_edge_and_is_cached(lab: LabStack) -> None:
    cfg = load_config(lab.config_path, env={})
    now = [1000.0]
    lookup = ReverseLookup(cfg.rdns_resolver, 2.0, now=lambda: now[0])
    first = asyncio.run(lookup.lookup("127.60.0.10"))
    assert first.hostname == "a127-60-0-10.deploy.edge.lab.test" and first.ttl > 0
    assert asyncio.run(lookup.lookup("127.60.0.10")) is first


def test_check_command_prints_a_table(lab: LabStack) -> None:
    host = lab.scenario.targets[0].name
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "check", host, "--config", str(lab.config_path),
         "--http-path", "/directory", "--timeout", "5"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{host} A"
    for resolver in lab.scenario.resolvers:
        assert any(line.startswith(resolver.name) for line in lines)
    assert any(".deploy.edge.lab.test" in line and line.rstrip().endswith("ok")
               for line in lines), proc.stdout


def test_check_verifies_dot_and_doh_resolvers_against_the_configured_ca(
        lab: LabStack, tmp_path: Path) -> None:
    """``check`` binds the probes as ``run`` does: ``tls.ca_file`` (the lab CA, which no system
    store knows) verifies the DoT/DoH resolvers of the configuration, not only the edges."""
    from lab.pki import DOT_NAME

    name, (address, port) = next(iter(lab.dot_endpoints.items()))
    url, doh_address = lab.doh_urls[name]
    doh_port = int(url.split(":")[2].split("/")[0])
    config = tmp_path / "edgewatch.toml"
    config.write_text(lab.config_path.read_text() + f"""
[[resolvers]]
name = "lab-dot"
address = "{address}"
port = {port}
transport = "dot"
server_name = "{DOT_NAME}"

[[resolvers]]
name = "lab-doh"
address = "{doh_address}"
port = {doh_port}
transport = "doh"
url = "{url}"
""")
    host = lab.scenario.targets[0].name
    start = lab.clock.now()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "check", host, "--config", str(config),
         "--timeout", "5"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    expected = frozenset().union(*_answers_during(lab, name, host, start))
    for resolver in ("lab-dot", "lab-doh"):
        (row,) = [line for line in proc.stdout.splitlines() if line.startswith(resolver + " ")]
        assert " NOERROR " in row and "dns.network" not in row, proc.stdout
        assert any(a in row for a in expected), (row, expected)


def test_sigterm_finishes_the_cycle_and_flushes(lab: LabStack, tmp_path: Path) -> None:
    env = {**os.environ, "EDGEWATCH_STORE__DIR": f'"{tmp_path / "data"}"',
           "EDGEWATCH_STATE__DIR": f'"{tmp_path / "state"}"'}
    env.pop("ES_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config",
                             str(lab.config_path), "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((tmp_path / "data").glob("checks-*")):
        time.sleep(0.2)
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    docs = list(read_store(tmp_path / "data", "checks"))
    assert len(docs) > 10
    checks = {d["edgewatch.check.id"] for d in docs}
    # every check that was stored is complete: one document per resolver at least
    for cid in checks:
        assert len({d["edgewatch.resolver.name"] for d in docs
                    if d["edgewatch.check.id"] == cid}) == 5
