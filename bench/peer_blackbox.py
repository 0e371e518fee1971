"""Peer of workload 3: Debian's prometheus-blackbox-exporter doing the same operations.

Driven through ``/probe?module=…&target=…`` on 127.0.0.1 with the same count and concurrency;
its CPU is read from ``/proc/<pid>/stat`` and its sockets are sampled while it runs.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from probe_common import HTTP_PATH, OpFigures, Work, free_port, is_loopback, proc_cpu

BLACKBOX = "prometheus-blackbox-exporter"


def go_duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def blackbox_config(work: Work) -> str:
    ca, name = json.dumps(str(work.ca)), json.dumps(work.server_name)
    dns_t = go_duration(work.dns_timeout)
    tls_t = go_duration(work.connect_timeout + work.tls_timeout)
    http_t = go_duration(work.connect_timeout + work.tls_timeout + work.http_timeout)
    return f"""modules:
  ew_dns:
    prober: dns
    timeout: {dns_t}
    dns:
      query_name: {json.dumps(work.qname)}
      query_type: A
      transport_protocol: udp
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      recursion_desired: true
      valid_rcodes: [NOERROR]
  ew_tls:
    prober: tcp
    timeout: {tls_t}
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls: true
      tls_config:
        ca_file: {ca}
        server_name: {name}
  ew_http:
    prober: http
    timeout: {http_t}
    http:
      method: GET
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      valid_status_codes: [200]
      fail_if_not_ssl: true
      follow_redirects: false
      headers:
        Host: {name}
      tls_config:
        ca_file: {ca}
        server_name: {name}
"""


def _socket_table() -> dict[str, tuple[str, str, str]]:
    """inode -> (proto, local, remote) for every IPv4/IPv6 TCP/UDP socket of the namespace."""
    table = {}
    for proto in ("tcp", "udp", "tcp6", "udp6"):
        try:
            with open(f"/proc/net/{proto}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            table[parts[9]] = (proto, _addr(parts[1]), _addr(parts[2]))
    return table


def _addr(hexaddr: str) -> str:
    host, port = hexaddr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    else:  # four little-endian 32-bit words
        ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
    return f"{ip}:{int(port, 16)}"


class SocketWatch(threading.Thread):
    """Samples a process's sockets; remembers every remote address that is not loopback/unset."""

    def __init__(self, pid: int, deadline: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.deadline = pid, deadline
        self.samples = 0
        self.seen: set[tuple[str, str, str]] = set()
        self.off_loopback: set[tuple[str, str, str]] = set()
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def run(self) -> None:
        while not self._halt.is_set() and time.monotonic() < self.deadline:
            try:
                inodes = set()
                for fd in os.listdir(f"/proc/{self.pid}/fd"):
                    with contextlib.suppress(OSError):
                        target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                        if target.startswith("socket:["):
                            inodes.add(target[8:-1])
            except OSError:
                return  # process gone
            table = _socket_table()
            for inode in inodes & table.keys():
                proto, local, remote = table[inode]
                self.seen.add((proto, local, remote))
                rhost = remote.rsplit(":", 1)[0]
                if rhost not in ("0.0.0.0", "::") and not is_loopback(rhost):
                    self.off_loopback.add((proto, local, remote))
            self.samples += 1
            self._halt.wait(0.05)


class Blackbox:
    """A blackbox_exporter process on 127.0.0.1 with the three modules; always stopped."""

    def __init__(self, work: Work, folder: Path) -> None:
        self.work = work
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.stderr_path = folder / "blackbox.stderr"

    def start(self, deadline: float) -> None:
        cfg = self.folder / "blackbox.yml"
        cfg.write_text(blackbox_config(self.work))
        check = subprocess.run([BLACKBOX, f"--config.file={cfg}", "--config.check"],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"config check failed: {check.stderr.strip()[-400:]}")
        self.proc = subprocess.Popen(
            [BLACKBOX, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=self.stderr_path.open("wb"), cwd=self.folder)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited {self.proc.returncode}: "
                                   f"{self.stderr_path.read_text()[-400:]}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/-/healthy")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            time.sleep(0.1)
        raise RuntimeError("not healthy before the deadline")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def target(self, op: str) -> str:
        w = self.work
        if op == "dns":
            return f"{w.resolver.address}:{w.resolver.port}"
        if op == "tls":
            return f"{w.edge}:{w.port}"
        return f"https://{w.edge}:{w.port}{HTTP_PATH}"

    def probe_once(self, conn: http.client.HTTPConnection, op: str) -> tuple[bool, str | None]:
        path = f"/probe?module=ew_{op}&target={self.target(op)}"
        conn.request("GET", path)
        body = conn.getresponse().read().decode()
        ok = re.search(r"^probe_success 1$", body, re.M) is not None
        return ok, None if ok else "probe_success 0"

    def drive(self, op: str, n: int, concurrency: int, deadline: float,
              warmup: int = 10) -> OpFigures:
        assert self.proc is not None
        fig = OpFigures("blackbox_exporter", op, n, concurrency=concurrency)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        for _ in range(warmup):
            self.probe_once(conn, op)
        conn.close()
        lock = threading.Lock()
        issued = 0

        def worker() -> None:
            nonlocal issued
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                while time.monotonic() < deadline:
                    with lock:
                        if issued >= n:
                            return
                        issued += 1
                    try:
                        ok, err = self.probe_once(c, op)
                    except (OSError, http.client.HTTPException) as exc:
                        ok, err = False, f"driver: {type(exc).__name__}"
                        c.close()
                        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    with lock:
                        fig.done += 1
                        fig.ok += ok
                        if err:
                            fig.errors[err] = fig.errors.get(err, 0) + 1
            finally:
                c.close()

        cpu0, wall0 = proc_cpu(self.proc.pid), time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            for f in [pool.submit(worker) for _ in range(concurrency)]:
                f.result()
        fig.wall_s = time.perf_counter() - wall0
        fig.cpu_s = proc_cpu(self.proc.pid) - cpu0
        if fig.done < n:
            fig.note = f"deadline hit after {fig.done}"
        return fig

    def idle_cpu(self, seconds: float = 2.0) -> float:
        assert self.proc is not None
        c0 = proc_cpu(self.proc.pid)
        time.sleep(seconds)
        return (proc_cpu(self.proc.pid) - c0) / seconds
