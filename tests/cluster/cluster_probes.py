"""``edgewatch run`` processes writing to the three-node cluster, and what they stored.

Each probe has its own observer name, work folder (ndjson store, state, spool, dead letters) and
log, and writes both sinks at once (``both_sinks`` of the end-to-end tests) into one shared
namespace of the cluster. The probes are started and stopped as an operator would: the command
line, then SIGTERM, which finishes the cycle in flight and flushes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from elasticsearch import Elasticsearch, helpers
from integration.e2e_truth import both_sinks, latest_runs  # tests/ is on sys.path

from lab.stack import LabStack
from pipeline.sinks.ndjson import read_store

HEALTH = "elasticsearch cluster health is "


@dataclass
class Probe:
    name: str
    work: Path
    es_url: str
    namespace: str
    metrics_port: int | None = None
    proc: subprocess.Popen | None = None
    returncode: int | None = None
    _log: object = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        return self.work / "edgewatch.toml"

    @property
    def log_path(self) -> Path:
        return self.work / "run.log"

    def write_config(self, lab: LabStack) -> Path:
        self.work.mkdir(parents=True, exist_ok=True)
        text = lab.config_path.read_text().replace('name = "lab-observer"',
                                                   f'name = "{self.name}"')
        assert f'name = "{self.name}"' in text
        text += both_sinks(self.work, self.es_url, self.namespace)
        if self.metrics_port is not None:
            text += f'\n[metrics]\nlisten = "127.0.0.1:{self.metrics_port}"\n'
        self.config.write_text(text)
        return self.config

    def edgewatch(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "pipeline", *args, "--config",
                               str(self.config)], capture_output=True, text=True, env=_env(),
                              timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        return proc

    def start(self) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", "--config", str(self.config),
             "--no-align", "--quiet"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env())

    def stop(self, timeout: float = 180.0) -> int | None:
        """SIGTERM (finish the cycle, flush, close), then SIGKILL if it does not end."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode, self.proc = self.proc.returncode, None
        self._log.close()  # type: ignore[attr-defined]
        return self.returncode

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health_lines(self) -> list[str]:
        return [line for line in self.log().splitlines() if HEALTH in line]

    def checks(self) -> list[dict]:
        return list(read_store(self.work / "data", "checks"))

    def check_lines(self) -> int:
        return sum(p.read_bytes().count(b"\n") for p in (self.work / "data").glob("checks-*"))

    def runs(self) -> dict[str, dict]:
        return latest_runs(read_store(self.work / "data", "runs"))


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}


def wait_growth(probes: list[Probe], lines: int, timeout: float = 180.0) -> None:
    """Until every probe's store has ``lines`` more check lines (a few cycles measured)."""
    start = {p.name: p.check_lines() for p in probes}
    deadline = time.monotonic() + timeout
    while any(p.check_lines() < start[p.name] + lines for p in probes):
        assert all(p.running() for p in probes), [p.log()[-2000:] for p in probes]
        assert time.monotonic() < deadline, f"probes measured less than {lines} lines"
        time.sleep(0.5)


def scan(es: Elasticsearch, index: str, observer: str) -> list[dict]:
    query = {"query": {"term": {"observer.name": observer}}}
    return [{"_id": h["_id"], **h["_source"]} for h in helpers.scan(es, index=index, query=query)]



def indexed_count(es: Elasticsearch, index: str, observer: str) -> int:
    es.indices.refresh(index=index)
    return int(es.count(index=index, query={"term": {"observer.name": observer}})["count"])


class GaugeWatch:
    """Scrapes one gauge of a probe's metrics endpoint every ``every_s`` in a thread and keeps
    the values in the order they changed (a probe's view of the cluster, as Prometheus sees it)."""

    def __init__(self, url: str, name: str, every_s: float = 0.3) -> None:
        self.url, self.name, self.every_s = url, name, every_s
        self.values: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GaugeWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                with urllib.request.urlopen(self.url, timeout=2) as resp:
                    text = resp.read().decode()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith(self.name + " "):
                    value = float(line.split()[1])
                    if not self.values or self.values[-1] != value:
                        self.values.append(value)
