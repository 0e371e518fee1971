"""The run folder's state file (lab.json): what a running lab is, for its own processes and `down`.

The Python servers are started as separate processes that read this file, so the same scenario,
clock and address plan drive the authoritative server, the shims, the edges and the ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.clock import ScenarioClock
from lab.plan import AddressPlan

STATE_FILE = "lab.json"


@dataclass
class LabState:
    """Serializable description of one lab instance."""

    run_dir: Path
    scenario_path: Path
    clock: ScenarioClock
    plan: AddressPlan
    processes: list[dict[str, Any]] = field(default_factory=list)  # name, pid, pgid, argv
    netns: str | None = None  # the dual-stack lab's network namespace (lab.netns)

    def save(self) -> Path:
        path = self.run_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "run_dir": str(self.run_dir),
            "scenario": str(self.scenario_path),
            "clock": self.clock.to_dict(),
            "plan": self.plan.to_dict(),
            "processes": self.processes,
            "netns": self.netns,
        }, indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, run_dir: Path) -> LabState:
        raw = json.loads((Path(run_dir) / STATE_FILE).read_text())
        return cls(
            run_dir=Path(raw["run_dir"]),
            scenario_path=Path(raw["scenario"]),
            clock=ScenarioClock.from_dict(raw["clock"]),
            plan=AddressPlan.from_dict(raw["plan"]),
            processes=list(raw.get("processes", [])),
            netns=raw.get("netns"),
        )
