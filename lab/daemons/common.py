"""What every resolver daemon needs to know about its place in the lab."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.plan import ResolverPlan
from lab.scenario import Resolver

#: zones the lab serves; resolvers send queries for these (and only these) to the lab server.
#: d.f.ip6.arpa is the reverse zone of fd00::/8, where dual-stack scenarios put IPv6 edges.
LAB_ZONES = ("lab.test", "127.in-addr.arpa", "d.f.ip6.arpa")


@dataclass(frozen=True)
class DaemonSpec:
    """Everything a config generator needs: who, where, how fast the scenario clock runs."""

    resolver: Resolver
    plan: ResolverPlan
    auth: str
    auth_port: int
    speed: float
    workdir: Path
    dot_cert: Path | None = None  # serve DNS over TLS on port 853 with this certificate
    dot_key: Path | None = None

    def real_seconds(self, scenario_seconds: float) -> int:
        """A scenario duration as whole real seconds for a daemon setting (at least 1)."""
        return max(1, int(scenario_seconds / self.speed))


@dataclass(frozen=True)
class DaemonCommand:
    """How to run a daemon in the foreground, and which files it wrote its config to."""

    argv: list[str]
    config_files: list[Path]
