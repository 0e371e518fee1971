"""A real multi-node Elasticsearch cluster on loopback, made of devstack nodes.

One probe writes to one node in development, but users run several nodes, and a node dying or a
master being re-elected is what their probes meet. Each member is a devstack node
(``devstack.node.start_node``) with its own HTTP and transport port on 127.0.0.1, the other
members' transport ports as ``discovery.seed_hosts`` and all member names as
``cluster.initial_master_nodes`` (every member is master-eligible and holds data, the defaults).

The members are launched one after another from the calling thread (a node started with
``die_with_parent`` dies with the *thread* that started it, so no worker threads), and the
cluster counts as formed when every member sees all of them and health is green.
``kill`` is SIGKILL of a member's whole process group; ``restart`` starts it again on its own
data folder and ports and waits until it has rejoined.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devstack.node import DevstackError, Node, free_port, start_node, stop_node

FORM_TIMEOUT_S = 240.0
CLUSTER_FILE = "cluster.json"


def get_json(url: str, path: str, timeout: float = 3.0) -> dict | list | None:
    """``GET url+path`` as JSON, or None when the node does not answer (yet, or any more)."""
    try:
        with urllib.request.urlopen(url + path, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


@dataclass
class Member:
    """One node of the cluster: its fixed name and ports survive a kill and a restart."""

    name: str
    http_port: int
    transport_port: int
    run_dir: Path
    node: Node | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def alive(self) -> bool:
        """The member's launcher still runs (reaped here if it has exited)."""
        if self.node is None:
            return False
        try:
            pid, _status = os.waitpid(self.node.pid, os.WNOHANG)
        except ChildProcessError:  # reaped already, or not our child: ask the kernel
            try:
                os.kill(self.node.pid, 0)
            except ProcessLookupError:
                return False
            return True
        return pid == 0


@dataclass
class Cluster:
    """The members, how long forming took, and the faults a test applies to them."""

    members: list[Member]
    cluster_name: str
    heap: str = "512m"
    die_with_parent: bool = False
    formed_in_s: float = 0.0
    seed_hosts: str = field(default="")

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(name)

    def live(self) -> list[Member]:
        return [m for m in self.members if m.alive()]

    def health(self, timeout: float = 3.0) -> dict | None:
        """``GET _cluster/health`` from the first live member that answers."""
        for m in self.live():
            body = get_json(m.url, f"/_cluster/health?timeout={int(timeout)}s", timeout + 2)
            if isinstance(body, dict) and "status" in body:
                return body
        return None

    def master(self) -> str | None:
        """The elected master's node name, from ``_cat/master`` (None while there is none)."""
        for m in self.live():
            body = get_json(m.url, "/_cat/master?format=json")
            if isinstance(body, list) and body and body[0].get("node"):
                return str(body[0]["node"])
        return None

    def data_node_not_master(self) -> Member:
        master = self.master()
        return next(m for m in self.members if m.name != master and m.alive())

    def _settings(self, m: Member, initial: bool) -> dict[str, str | None]:
        settings: dict[str, str | None] = {
            "cluster.name": self.cluster_name,
            "node.name": m.name,
            "discovery.type": None,
            "transport.port": str(m.transport_port),
            "discovery.seed_hosts": self.seed_hosts,
        }
        if initial:  # only for bootstrapping; a rejoining member must not carry it
            settings["cluster.initial_master_nodes"] = ",".join(x.name for x in self.members)
        return settings

    def _launch(self, m: Member, initial: bool) -> None:
        m.node = start_node(run_dir=m.run_dir, port=m.http_port, heap=self.heap,
                            die_with_parent=self.die_with_parent,
                            settings=self._settings(m, initial), ready=lambda _url: True)

    def wait_for(self, members: list[Member], nodes: int, status: str | None,
                 timeout: float) -> float:
        """Seconds until each of ``members`` sees ``nodes`` nodes (and ``status`` if given)."""
        t0 = time.monotonic()
        pending = list(members)
        while pending:
            for m in list(pending):
                if not m.alive():
                    tail = (m.run_dir / "console.log").read_text(errors="replace")[-3000:]
                    raise DevstackError(f"cluster member {m.name} exited:\n{tail}")
                body = get_json(m.url, "/_cluster/health")
                if (isinstance(body, dict) and body.get("number_of_nodes") == nodes
                        and (status is None or body.get("status") == status)):
                    pending.remove(m)
            if pending and time.monotonic() - t0 > timeout:
                raise DevstackError(f"cluster members {[m.name for m in pending]} did not see "
                                    f"{nodes} nodes within {timeout:.0f}s")
            if pending:
                time.sleep(0.25)
        return time.monotonic() - t0

    def wait_for_status(self, status: str, timeout: float = FORM_TIMEOUT_S) -> float:
        """Seconds until the cluster (asked through any live member) reports ``status``."""
        t0 = time.monotonic()
        while True:
            body = self.health()
            if body is not None and body.get("status") == status:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise DevstackError(f"cluster not {status} within {timeout:.0f}s: {body}")
            time.sleep(0.25)

    def kill(self, name: str) -> None:
        """SIGKILL the member's launcher and JVM (its process group) and wait until gone."""
        m = self.member(name)
        if m.node is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(m.node.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while m.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):  # the JVM child, once its group is gone
            while time.monotonic() < deadline:
                os.killpg(m.node.pid, 0)
                time.sleep(0.1)
        (m.run_dir / "launcher.pid").unlink(missing_ok=True)

    def restart(self, name: str, timeout: float = FORM_TIMEOUT_S) -> float:
        """Start a killed member again on its data and ports; seconds until it has rejoined."""
        m = self.member(name)
        t0 = time.monotonic()
        self._launch(m, initial=False)
        self.wait_for([m], len(self.members), None, timeout)
        return time.monotonic() - t0

    def stop(self) -> None:
        """Stop every member (SIGTERM, then SIGKILL after 30 s); safe to call twice."""
        for m in self.members:
            stop_node(m.run_dir)
            m.node = None

    def describe(self) -> dict:
        return {"cluster_name": self.cluster_name, "formed_in_s": round(self.formed_in_s, 1),
                "members": [{"name": m.name, "url": m.url, "transport_port": m.transport_port,
                             "run_dir": str(m.run_dir)} for m in self.members]}


def start_cluster(base_dir: Path, nodes: int = 3, heap: str = "512m",
                  http_ports: list[int] | None = None, die_with_parent: bool = False,
                  timeout: float = FORM_TIMEOUT_S) -> Cluster:
    """Start ``nodes`` fresh members under ``base_dir`` and return once the cluster is green.

    Raises DevstackError (after stopping whatever started) when it does not form in time.
    """
    if nodes < 1:
        raise DevstackError(f"--nodes must be at least 1, not {nodes}")
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    base_dir.chmod(0o755)
    ports = http_ports or [free_port() for _ in range(nodes)]
    members = [Member(name=f"node-{i}", http_port=ports[i], transport_port=free_port(),
                      run_dir=base_dir / f"node-{i}") for i in range(nodes)]
    cluster = Cluster(members=members, cluster_name=f"edgewatch-devstack-{uuid.uuid4().hex[:8]}",
                      heap=heap, die_with_parent=die_with_parent,
                      seed_hosts=",".join(f"127.0.0.1:{m.transport_port}" for m in members))
    t0 = time.monotonic()
    try:
        for m in members:
            cluster._launch(m, initial=True)
        cluster.wait_for(members, nodes, "green", timeout)
    except BaseException:
        cluster.stop()
        raise
    cluster.formed_in_s = time.monotonic() - t0
    (base_dir / CLUSTER_FILE).write_text(json.dumps(cluster.describe(), indent=2))
    return cluster


def stop_cluster(base_dir: Path) -> int:
    """Stop every member found under ``base_dir`` (``node-*`` run folders); how many ran."""
    stopped = 0
    for run_dir in sorted(Path(base_dir).glob("node-*")):
        stopped += stop_node(run_dir)
    return stopped


def start_cluster_cli(run_dir: Path, nodes: int, port: int, heap: str) -> int:
    """``edgewatch-devstack start --nodes N``: start, print the figures and the URLs."""
    cluster = start_cluster(run_dir, nodes=nodes, heap=heap,
                            http_ports=[port + i for i in range(nodes)])
    print(f"{nodes}-node cluster {cluster.cluster_name} is green "
          f"(formed in {cluster.formed_in_s:.1f}s; master {cluster.master()})")
    print(",".join(cluster.urls))
    return 0
