"""How big the Elasticsearch spool grows while the cluster is away: bytes per record, per kind.

    PYTHONPATH=. .venv/bin/python scripts/spool_cost.py [--scenario quick] [--cycles 12]

Starts the lab (loopback only) and `edgewatch run` with the Elasticsearch sink pointed at a
closed loopback port, so nothing drains, and the ndjson store beside it, so the records are
counted per kind. Prints one Markdown table (docs/MANY_PROBES.md, "How big the spool grows");
the lab is stopped and everything removed after.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from lab.stack import LabStack
from pipeline.sinks.ndjson import read_store

CLOSED = "http://127.0.0.1:9"  # the discard port, closed here: every delivery attempt fails


def _config(lab: LabStack, tmp: Path) -> Path:
    path = tmp / "edgewatch.toml"
    path.write_text(lab.config_path.read_text() + f"""
[store]
dir = "{tmp / 'data'}"
[state]
dir = "{tmp / 'state'}"
[elasticsearch]
url = "{CLOSED}"
namespace = "spool"
spool_dir = "{tmp / 'spool'}"
dead_letter_dir = "{tmp / 'dead'}"
[sinks]
enabled = ["elasticsearch", "ndjson"]
""")
    return path


def _bytes(folder: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def measure(scenario: str, cycles: int) -> str:
    with tempfile.TemporaryDirectory(prefix="edgewatch-spool-") as name:
        tmp = Path(name)
        lab = LabStack(scenario, speed=900.0, run_dir=tmp / "lab")
        lab.start()
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "EDGEWATCH_"))}
            subprocess.run([sys.executable, "-m", "pipeline", "run", "--config",
                            str(_config(lab, tmp)), "--cycles", str(cycles), "--quiet"],
                           env=env, check=True, capture_output=True, timeout=1200)
        finally:
            lab.stop()
        rows, total = [], 0
        for kind, stem in (("check documents", "checks"), ("run summaries", "runs")):
            count = sum(1 for _ in read_store(tmp / "data", stem))
            size = _bytes(tmp / "data", f"{stem}-*.ndjson")
            total += count
            rows.append(f"| {kind} (store) | {count:,} | {size:,} | {size // max(count, 1):,} |")
        spool = _bytes(tmp / "spool", "*.seg")
        rows.append(f"| spool, both kinds | {total:,} | {spool:,} | {spool // max(total, 1):,} |")
    head = f"scenario {scenario}, {cycles} cycles, cluster unreachable\n\n" \
           "| | records | bytes | per record |\n|---|---|---|---|"
    return "\n".join([head, *rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="quick")
    parser.add_argument("--cycles", type=int, default=12)
    args = parser.parse_args()
    print(measure(args.scenario, args.cycles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
