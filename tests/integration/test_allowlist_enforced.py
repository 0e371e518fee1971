"""Allowlists loaded into the real tools: nftables, and ipset with iptables/ip6tables.

A dual-stack lab (its own network namespace, so nothing here touches the machine's firewall)
is observed for a few cycles; ``edgewatch allowlist --coverage 1`` then lists every edge that
answered. That list is loaded into the lab's namespace with ``nft -f`` (or ``ipset restore``)
under an output chain that drops every other connection to the edge port, and a TCP connect
from inside to every healthy edge of the scenario, IPv4 and IPv6, must go through exactly when
the truth says the edge was seen answering, and time out otherwise.

Predicted vs enforced: with the same list as the config's deployed list (`[[allowlists]]`),
``edgewatch run`` inside the enforcing namespace predicts per check whether the list lets it
through (``edgewatch.allowlist.allowed`` / ``denied``), and the firewall's real outcome agrees
with every prediction.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_truth import polls_of

from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.sinks.ndjson import read_store

pytestmark = pytest.mark.integration
EDGEWATCH = [sys.executable, "-m", "pipeline"]
CYCLES = 8  # two scenario hours: some rotating edges seen, others not yet
CONNECT_TIMEOUT = 0.5  # real seconds; an allowed loopback connect takes well under a millisecond

lab = lab_fixture("dualstack", speed=900.0, scope="module", name="fw_lab")


def run(cmd: list[str], stdin: str | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, (cmd, proc.stderr[-2000:])
    return proc


@pytest.fixture(scope="module")
def observed(fw_lab: LabStack, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """The store of a short run inside the namespace, and the edges the truth says answered."""
    tmp = tmp_path_factory.mktemp("enforced")
    env = {**os.environ, "EDGEWATCH_STORE__DIR": f'"{tmp / "data"}"',
           "EDGEWATCH_STATE__DIR": f'"{tmp / "state"}"'}
    env.pop("ES_URL", None)
    run([*fw_lab.exec_prefix, *EDGEWATCH, "run", "--config", str(fw_lab.config_path),
         "--cycles", str(CYCLES), "--quiet"], env=env)
    store = tmp / "data"
    seen: set[str] = set()
    checks = list(read_store(store, "checks"))
    for rdtype in ("A", "AAAA"):
        for (resolver, target), seq in polls_of(
                d for d in checks if d["dns.question.type"] == rdtype).items():
            for ans in fw_lab.truth.observe(resolver, target, [t for t, _, _ in seq], rdtype):
                seen |= ans.addresses
    return store, {a for a in seen if fw_lab.truth.edge_outcome(a) is None}


def healthy_edges(lab: LabStack) -> list[str]:
    return [a for a in lab.scenario.edge_addresses() if lab.truth.edge_outcome(a) is None]


def allowlist(store: Path, fmt: str, out: Path) -> str:
    run([*EDGEWATCH, "allowlist", "--store", str(store), "--coverage", "1", "--format", fmt,
         "--set-name", "ew_allow", "-o", str(out)])
    return out.read_text()


def connects(lab: LabStack, addresses: list[str]) -> dict[str, bool]:
    """From inside the namespace: which TCP connects to the edge port complete."""
    def attempt() -> dict[str, bool]:
        out = {}
        for a in addresses:
            fam = socket.AF_INET6 if ":" in a else socket.AF_INET
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.settimeout(CONNECT_TIMEOUT)
                try:
                    s.connect((a, lab.edge_port))
                    out[a] = True
                except (TimeoutError, PermissionError):  # dropped by the output chain
                    out[a] = False
        return out
    return lab.call_inside(attempt)


def expect(lab: LabStack, allowed: set[str]) -> dict[str, bool]:
    edges = healthy_edges(lab)
    families = {ipaddress.ip_address(a).version for a in edges if a in allowed}
    blocked = {ipaddress.ip_address(a).version for a in edges if a not in allowed}
    assert families == blocked == {4, 6}  # both outcomes in both families, or the test is weak
    return {a: a in allowed for a in edges}


@pytest.fixture
def clean_firewall(fw_lab: LabStack) -> Iterator[None]:
    """Whatever a test loads into the namespace is gone before the next test."""
    yield
    inside = fw_lab.exec_prefix
    subprocess.run([*inside, "nft", "flush", "ruleset"], capture_output=True)
    for tool in ("iptables", "ip6tables"):
        subprocess.run([*inside, tool, "-F", "OUTPUT"], capture_output=True)
    subprocess.run([*inside, "ipset", "destroy"], capture_output=True)


def test_nft_allowlist_enforced_in_both_families(fw_lab: LabStack, observed, tmp_path: Path,
                                                 clean_firewall: None) -> None:
    store, allowed = observed
    want = expect(fw_lab, allowed)
    assert all(connects(fw_lab, list(want)).values())  # nothing loaded yet: every edge answers
    text = allowlist(store, "nft", tmp_path / "allow.nft")
    chain = tmp_path / "chain.nft"
    chain.write_text(
        "table inet edgewatch {\n"
        "\tchain out {\n"
        "\t\ttype filter hook output priority 0; policy accept;\n"
        f"\t\ttcp dport {fw_lab.edge_port} ip daddr != @ew_allow4 drop\n"
        f"\t\ttcp dport {fw_lab.edge_port} ip6 daddr != @ew_allow6 drop\n"
        "\t}\n"
        "}\n")
    run([*fw_lab.exec_prefix, "nft", "-f", str(tmp_path / "allow.nft")])
    run([*fw_lab.exec_prefix, "nft", "-f", str(chain)])
    listed = run([*fw_lab.exec_prefix, "nft", "list", "set", "inet", "edgewatch", "ew_allow6"])
    assert "fd00:" in listed.stdout and "ew_allow4" in text
    assert connects(fw_lab, list(want)) == want
    # the host's own ruleset never saw any of it
    host = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert "edgewatch" not in host


def test_ipset_allowlist_enforced_with_iptables(fw_lab: LabStack, observed, tmp_path: Path,
                                                clean_firewall: None) -> None:
    store, allowed = observed
    want = expect(fw_lab, allowed)
    text = allowlist(store, "ipset", tmp_path / "allow.ipset")
    run([*fw_lab.exec_prefix, "ipset", "restore"], stdin=text)
    port = str(fw_lab.edge_port)
    for tool, name in (("iptables", "ew-allow4"), ("ip6tables", "ew-allow6")):
        run([*fw_lab.exec_prefix, tool, "-A", "OUTPUT", "-p", "tcp", "--dport", port,
             "-m", "set", "!", "--match-set", name, "dst", "-j", "DROP"])
    assert connects(fw_lab, list(want)) == want


def test_a_set_name_that_is_not_an_identifier_is_refused(observed) -> None:
    store, _ = observed
    for bad in ("ew-allow", "ew allow", "1allow", "ip"):
        proc = subprocess.run([*EDGEWATCH, "allowlist", "--store", str(store), "--format", "nft",
                               "--set-name", bad], capture_output=True, text=True)
        assert proc.returncode == 2, bad
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "--set-name" in lines[0], proc.stderr
        assert proc.stdout == ""


def test_predicted_verdicts_agree_with_the_enforcing_firewall(fw_lab: LabStack, observed,
                                                              tmp_path: Path,
                                                              clean_firewall: None) -> None:
    """Predicted vs enforced: the list the firewall enforces is also the config's deployed
    list; `edgewatch run` inside the namespace then says, check by check, whether the list lets
    it through, and the real firewall did exactly that — every check predicted denied timed out
    at TCP, every one predicted allowed completed its TLS handshake. Both families, both
    outcomes."""
    store, allowed = observed
    listfile = tmp_path / "deployed.nft"
    allowlist(store, "nft", listfile)
    port = fw_lab.edge_port
    chain = tmp_path / "chain.nft"
    chain.write_text(
        "table inet edgewatch {\n\tchain out {\n"
        "\t\ttype filter hook output priority 0; policy accept;\n"
        f"\t\ttcp dport {port} ip daddr != @ew_allow4 drop\n"
        f"\t\ttcp dport {port} ip6 daddr != @ew_allow6 drop\n\t}}\n}}\n")
    for f in (listfile, chain):
        run([*fw_lab.exec_prefix, "nft", "-f", str(f)])
    config = tmp_path / "edgewatch.toml"
    config.write_text(fw_lab.config_path.read_text()
                      + f'\n[[allowlists]]\nname = "deployed"\nfile = "{listfile}"\n')
    env = {**os.environ, "EDGEWATCH_STORE__DIR": f'"{tmp_path / "data"}"',
           "EDGEWATCH_STATE__DIR": f'"{tmp_path / "state"}"'}
    env.pop("ES_URL", None)
    run([*fw_lab.exec_prefix, *EDGEWATCH, "run", "--config", str(config), "--cycles",
         str(CYCLES), "--quiet"], env=env)
    seen: dict[tuple[int, bool], int] = {}
    for doc in read_store(tmp_path / "data", "checks"):
        ip = doc.get("destination.ip")
        if ip is None:
            continue
        predicted = "deployed" in doc["edgewatch.allowlist.allowed"]
        assert predicted == (ip in allowed), doc  # the list holds exactly the answered edges
        assert predicted != ("deployed" in doc["edgewatch.allowlist.denied"])
        if predicted:
            assert doc.get("error.type") is None and doc["tls.established"] is True, doc
        else:
            assert doc.get("error.type") == "tcp.timeout", doc
        key = (ipaddress.ip_address(ip).version, predicted)
        seen[key] = seen.get(key, 0) + 1
    assert set(seen) == {(4, True), (4, False), (6, True), (6, False)}, seen
