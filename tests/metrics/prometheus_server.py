"""A real Prometheus server for the metrics tests: Debian's /usr/bin/prometheus on loopback.

It gets its own data folder and a free loopback port, scrapes only the loopback targets it is
given, evaluates the rules file it is given, and is always stopped (TERM, then KILL) when the
``with`` block ends, also after a failure. Prometheus sends nothing anywhere else: no
Alertmanager, no remote write are configured.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

PROMETHEUS = "/usr/bin/prometheus"
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seconds(duration: str) -> float:
    """A Prometheus duration such as ``1h30m`` in seconds."""
    return sum(int(n) * _UNIT_S[u] for n, u in _DURATION.findall(duration))


def _ms(value: float) -> str:
    return f"{max(1, round(value * 1000))}ms"


def scaled_rules(rules_file: Path, speed: float, out: Path) -> Path:
    """The rules with every duration (``for:`` and range selectors) divided by ``speed``: the
    lab's clock runs ``speed`` times faster than real time, so "30 minutes" of cadence is
    30 m / speed of real time. The expressions are otherwise exactly the shipped ones."""
    doc = yaml.safe_load(rules_file.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = _ms(seconds(rule["for"]) / speed)
            rule["expr"] = re.sub(r"\[([0-9a-z]+)\]",
                                  lambda m: f"[{_ms(seconds(m.group(1)) / speed)}]", rule["expr"])
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def alerts(self) -> list[dict]:
        return self.api("alerts")["alerts"]


@contextlib.contextmanager
def prometheus(tmp: Path, targets: list[str], rules: Path, interval: float = 0.25
               ) -> Iterator[Prometheus]:
    """A running Prometheus scraping ``targets`` (job "edgewatch") every ``interval`` seconds
    and evaluating ``rules`` as often."""
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": _ms(interval), "scrape_timeout": _ms(interval * 0.8),
                   "evaluation_interval": _ms(interval)},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "edgewatch", "static_configs": [{"targets": targets}]}],
    }))
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited {proc.returncode}: "
                                   f"{(tmp / 'prometheus.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready within 60 s")
            time.sleep(0.1)
        yield Prometheus(url)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
