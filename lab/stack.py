"""LabStack: bring the whole lab up (and down again) from Python or the CLI.

Start order: certificates and the iptoasn table, then the lab's own servers (authoritative DNS +
fault shims, TLS edges), then one real resolver daemon per scenario resolver, then a readiness
check that asks every daemon for the lab zone's SOA (not the targets: their caches must stay
untouched so the ground truth holds from the first poll). Stopping kills every process group,
also after a failed start.
"""

from __future__ import annotations

import errno
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import dns.message
import dns.query
import dns.rcode

from lab import ewconfig, netinfo, netns, pki, procs
from lab.clock import ScenarioClock
from lab.daemons import kresd, pdns, unbound
from lab.daemons.common import DaemonSpec
from lab.plan import AddressPlan
from lab.scenario import Scenario, load_scenario
from lab.state import STATE_FILE, LabState
from lab.timeparse import to_epoch
from lab.truth import GroundTruth

DAEMONS = {"unbound": unbound, "kresd": kresd, "pdns-recursor": pdns}
CONFIG_FILE = "edgewatch.toml"
T = TypeVar("T")
NETINFO_FILE = "ip2asn.tsv"


class LabError(RuntimeError):
    """The lab could not start (the message says which part and where its log is)."""


def _bindable(host: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def choose_plan(scenario: Scenario, octet: int | None, edge_port: int | None,
                namespaced: bool = False) -> AddressPlan:
    """First free address octet (53, 54, ...) and edge port (443, 4443, ...) unless given.

    In a namespace of its own the lab has the whole plan to itself: 53 and 443."""
    if namespaced:
        return AddressPlan(octet=53 if octet is None else octet,
                           edge_port=443 if edge_port is None else edge_port)
    probe_edge = scenario.edge_addresses()[0]
    octets = [octet] if octet is not None else list(range(53, 60))
    ports = [edge_port] if edge_port is not None else [443, 4443, 5443, 6443, 7443, 8443]
    chosen_octet = next((o for o in octets if _bindable(f"127.{o}.0.1", 53, socket.SOCK_DGRAM)
                         and _bindable(f"127.{o}.1.1", 53, socket.SOCK_DGRAM)), None)
    if chosen_octet is None:
        raise LabError(f"no free DNS address plan among 127.{octets}.0.1:53 (another lab running?)")
    chosen_port = next((p for p in ports if _bindable(probe_edge, p, socket.SOCK_STREAM)), None)
    if chosen_port is None:
        raise LabError(f"no free edge port among {ports} on {probe_edge}")
    return AddressPlan(octet=chosen_octet, edge_port=chosen_port)


class LabStack:
    """A running lab. Use as a context manager; see lab.testing for the pytest fixture."""

    def __init__(self, scenario: Scenario | str | Path, speed: float = 3600.0,
                 run_dir: str | Path = "var/lab", start_at: datetime | float | None = None,
                 octet: int | None = None, edge_port: int | None = None,
                 detach: bool = False, ready_timeout: float = 20.0,
                 namespace: bool | None = None) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.speed = float(speed)
        self.run_dir = Path(run_dir).resolve()
        self.start_at = self.scenario.start if start_at is None else (
            to_epoch(start_at) if isinstance(start_at, datetime) else float(start_at))
        self._octet = octet
        self._edge_port = edge_port
        self.detach = detach
        self.ready_timeout = ready_timeout
        self.plan: AddressPlan | None = None
        self.clock: ScenarioClock | None = None
        self.state: LabState | None = None
        self.processes: list[procs.Managed] = []
        self.started_in: float | None = None  # seconds from start() to ready
        # dual-stack scenarios need a network namespace (their fd00::/8 edges); others may ask
        self.namespaced = self.scenario.has_ipv6 if namespace is None else bool(namespace)
        self.netns: str | None = None  # its name while it exists
        self.netns_setup_s: float | None = None  # seconds creating it took

    # -- public surface --------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.run_dir / CONFIG_FILE

    @property
    def ca_path(self) -> Path:
        return self.run_dir / "pki" / pki.CA_FILE

    @property
    def netinfo_path(self) -> Path:
        return self.run_dir / NETINFO_FILE

    @property
    def resolvers(self) -> dict[str, tuple[str, int]]:
        assert self.plan is not None, "lab not started"
        return {p.name: (p.listen, p.port) for p in self.plan.resolvers(self.scenario)}

    @property
    def dot_endpoints(self) -> dict[str, tuple[str, int]]:
        """Resolvers that also speak DNS over TLS (unbound ones), verified as pki.DOT_NAME."""
        assert self.plan is not None, "lab not started"
        return {p.name: (p.daemon, unbound.DOT_PORT)
                for p, r in zip(self.plan.resolvers(self.scenario), self.scenario.resolvers,
                                strict=True) if r.software == "unbound"}

    @property
    def doh_urls(self) -> dict[str, tuple[str, str]]:
        """Resolvers that also speak DNS over HTTPS: name → (URL naming pki.DOT_NAME, address)."""
        assert self.plan is not None, "lab not started"
        return {name: (f"https://{pki.DOT_NAME}:{unbound.DOH_PORT}{unbound.DOH_PATH}", address)
                for name, (address, _port) in self.dot_endpoints.items()}

    @property
    def auth(self) -> tuple[str, int]:
        assert self.plan is not None, "lab not started"
        return (self.plan.auth, self.plan.dns_port)

    @property
    def edge_port(self) -> int:
        assert self.plan is not None, "lab not started"
        return self.plan.edge_port

    @property
    def exec_prefix(self) -> list[str]:
        """Put this in front of a command to run it where the lab's addresses are (the
        namespace of a dual-stack lab; nothing for the plain loopback lab)."""
        return netns.exec_prefix(self.netns) if self.netns else []

    def call_inside(self, fn: Callable[[], T]) -> T:
        """Run fn where the lab's addresses are (a thread inside the namespace, if any)."""
        return netns.call_in(self.netns, fn) if self.netns else fn()

    @property
    def truth(self) -> GroundTruth:
        return GroundTruth(self.scenario, self.speed)

    def observer_config(self, observer: str) -> Path:
        """The config of the scenario's observer ``observer`` (its name, geo and source
        address), in the run folder as ``edgewatch-<observer>.toml`` (``start`` writes one
        for every observer)."""
        assert self.plan is not None and self.clock is not None, "lab not started"
        path = self.run_dir / f"edgewatch-{observer}.toml"
        return ewconfig.write(path, ewconfig.render(
            self.scenario, self.plan, self.clock, self.ca_path, self.netinfo_path,
            observer=self.scenario.observer(observer)))

    def export_config(self, path: str | Path) -> Path:
        """Write the config to `path` with the CA and netinfo table copied beside it."""
        assert self.plan is not None and self.clock is not None, "lab not started"
        path = Path(path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        ca = path.parent / "ca.pem"
        table = path.parent / NETINFO_FILE
        shutil.copyfile(self.ca_path, ca)
        shutil.copyfile(self.netinfo_path, table)
        tmp = path.with_suffix(".tmp")  # appear atomically: a health check may watch for it
        tmp.write_text(ewconfig.render(self.scenario, self.plan, self.clock, ca, table))
        tmp.replace(path)
        return path

    def __enter__(self) -> LabStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LabStack:
        t0 = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if (self.run_dir / STATE_FILE).exists():
            previous = LabState.load(self.run_dir)
            if any(procs.Managed.from_dict(p).alive() for p in previous.processes):
                raise LabError(f"a lab is already running in {self.run_dir} (edgewatch-lab down)")
        for stale in self.run_dir.glob("*.ready"):
            stale.unlink()
        self.plan = choose_plan(self.scenario, self._octet, self._edge_port, self.namespaced)
        hostnames = [t.name for t in self.scenario.targets]
        pki.generate(self.run_dir / "pki", hostnames, self.scenario.wrong_name)
        netinfo.write_iptoasn(self.scenario, self.netinfo_path)
        self.clock = ScenarioClock(start=self.start_at, anchor=time.time(), speed=self.speed)
        self.state = LabState(self.run_dir, self.scenario.path, self.clock, self.plan)
        self.state.save()
        try:
            if self.namespaced:
                self._trap_sigterm()
                self._create_netns()
            self._start_python("dns")
            self._start_python("edges")
            self._wait_files(["dns.ready", "edges.ready"])
            self._start_daemons()
            self.call_inside(self._wait_resolvers)
        except BaseException:
            self.stop()
            raise
        ewconfig.write(self.config_path, ewconfig.render(
            self.scenario, self.plan, self.clock, self.ca_path, self.netinfo_path))
        for o in self.scenario.observers:  # one config per observer, beside the default one
            self.observer_config(o.name)
        self.started_in = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Stop every process of this lab (also ones a previous `up` left, via lab.json)."""
        known = list(self.processes)
        if self.state is None and (self.run_dir / STATE_FILE).exists():
            self.state = LabState.load(self.run_dir)
        if self.state is not None:
            mine = {p.pid for p in known}
            known += [procs.Managed.from_dict(p) for p in self.state.processes
                      if p["pid"] not in mine]
        for proc in reversed(known):
            procs.stop(proc)
        procs.kill_pids(procs.stragglers(str(self.run_dir) + "/"))
        self.processes = []
        if self.state is not None:
            self.state.processes = []
            self.state.save()
        for ready in self.run_dir.glob("*.ready"):
            ready.unlink()
        pdns.remove_control_dirs(self.run_dir / "resolvers")
        self._delete_netns()

    # -- parts -------------------------------------------------------------------------------
    def _trap_sigterm(self) -> None:
        """A namespace outlives a process killed by SIGTERM's default action (its children die
        by PR_SET_PDEATHSIG, the namespace does not): unless someone else handles SIGTERM, turn
        it into SystemExit so that `with LabStack(...)` and fixtures unwind through stop()."""
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
            def _exit(signum: int, _frame: object) -> None:
                raise SystemExit(128 + signum)

            signal.signal(signal.SIGTERM, _exit)

    def _create_netns(self) -> None:
        assert self.state is not None
        t0 = time.monotonic()
        netns.reap_orphans()
        name = netns.new_name()
        self.state.netns = name  # recorded first: `down` removes it even if creating fails
        self.state.save()
        netns.create(name, self.scenario.edge_addresses())
        self.netns = name
        self.netns_setup_s = time.monotonic() - t0

    def _delete_netns(self) -> None:
        name = self.netns or (self.state.netns if self.state is not None else None)
        if name:
            netns.delete(name)
        self.netns = None
        if self.state is not None and self.state.netns:
            self.state.netns = None
            self.state.save()

    def _record(self, proc: procs.Managed) -> None:
        self.processes.append(proc)
        assert self.state is not None
        self.state.processes = [p.to_dict() for p in self.processes]
        self.state.save()

    def _start_python(self, role: str) -> None:
        argv = [sys.executable, "-m", "lab.serve", role, "--run-dir", str(self.run_dir) + "/"]
        cwd = Path(__file__).resolve().parent.parent
        self._record(procs.spawn(role, argv, self.run_dir / "logs" / f"{role}.log", cwd,
                                 die_with_parent=not self.detach, netns=self.netns))

    def _start_daemons(self) -> None:
        assert self.plan is not None
        for plan, resolver in zip(self.plan.resolvers(self.scenario), self.scenario.resolvers,
                                  strict=True):
            workdir = self.run_dir / "resolvers" / resolver.name
            spec = DaemonSpec(resolver=resolver, plan=plan, auth=self.plan.auth,
                              auth_port=self.plan.dns_port, speed=self.speed, workdir=workdir,
                              dot_cert=self.run_dir / "pki" / pki.DOT_CERT,
                              dot_key=self.run_dir / "pki" / pki.DOT_KEY)
            cmd = DAEMONS[resolver.software].command(spec)
            self._record(procs.spawn(resolver.name, cmd.argv,
                                     self.run_dir / "logs" / f"{resolver.name}.log", workdir,
                                     die_with_parent=not self.detach, netns=self.netns))

    def _check_alive(self) -> None:
        for proc in self.processes:
            if not proc.alive():
                tail = proc.log.read_text(errors="replace")[-2000:] if proc.log.exists() else ""
                raise LabError(f"{proc.name} exited during start; log {proc.log}:\n{tail}")

    def _wait_files(self, names: list[str]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not all((self.run_dir / n).exists() for n in names):
            self._check_alive()
            if time.monotonic() > deadline:
                raise LabError(f"timed out waiting for {names} in {self.run_dir}")
            time.sleep(0.02)

    def _wait_resolvers(self) -> None:
        """Every daemon (behind its shim, if any) answers NOERROR for the zone's SOA."""
        assert self.plan is not None
        pending = {p.name: (p.daemon, p.port) for p in self.plan.resolvers(self.scenario)}
        deadline = time.monotonic() + self.ready_timeout
        while pending:
            self._check_alive()
            for name, (host, port) in list(pending.items()):
                query = dns.message.make_query(self.scenario.origin + ".", "SOA")
                try:
                    reply = dns.query.udp(query, host, port=port, timeout=0.2)
                except (OSError, dns.exception.Timeout):
                    continue
                if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                    del pending[name]
            if pending and time.monotonic() > deadline:
                raise LabError(f"resolvers not answering after {self.ready_timeout}s: "
                               f"{sorted(pending)} (logs in {self.run_dir / 'logs'})")
            if pending:
                time.sleep(0.05)


def stop_run_dir(run_dir: str | Path) -> int:
    """`edgewatch-lab down`: stop whatever lab lab.json in run_dir describes; returns #killed."""
    run_dir = Path(run_dir).resolve()
    if not (run_dir / STATE_FILE).exists():
        return 0
    state = LabState.load(run_dir)
    managed = [procs.Managed.from_dict(p) for p in state.processes]
    alive = [m for m in managed if m.alive()]
    for m in reversed(alive):
        procs.stop(m)
    left = procs.stragglers(str(run_dir) + "/")
    procs.kill_pids(left)
    state.processes = []
    if state.netns:
        netns.delete(state.netns)
        state.netns = None
    state.save()
    netns.reap_orphans()
    for ready in run_dir.glob("*.ready"):
        ready.unlink()
    pdns.remove_control_dirs(run_dir / "resolvers")
    return len(alive) + len(left)
