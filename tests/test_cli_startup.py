"""The CLI's start: building the parser of every command loads none of the probe.

``pipeline.cli.build_parser`` imports every command module to add its options, so whatever a
command module imports at its top, every command pays for at start: the probe (dnspython, its
QUIC support) cost ``edgewatch report`` and the rest about 0.85 s (docs/BENCHMARKS.md). The probe
is loaded only when ``run`` or ``check`` actually runs (``commands/_run_cycles.py``, the import
inside ``check.run``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Loaded by the probe and the cycle, and by nothing a parser needs.
PROBE_MODULES = ("pipeline.probe.dns", "pipeline.probe.connect", "pipeline.cycle",
                 "pipeline.scheduler", "dns.asyncquery")


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after ``code`` (a fresh one: this test process
    has imported everything already)."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_building_the_parser_loads_no_probe() -> None:
    loaded = _loaded_after("import pipeline.cli\npipeline.cli.build_parser()")
    assert "pipeline.commands.run" in loaded and "pipeline.commands.check" in loaded
    assert not loaded & set(PROBE_MODULES)


def test_the_run_command_still_reaches_the_probe() -> None:
    """The deferred import is real: the module ``run`` hands its work to loads the cycle."""
    loaded = _loaded_after("import pipeline.commands._run_cycles")
    assert {"pipeline.cycle", "pipeline.probe.dns"} <= loaded
