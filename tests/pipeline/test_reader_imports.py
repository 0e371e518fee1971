"""Reading stored documents needs no probe: the readers must not pull in the DNS/TLS stack."""

from __future__ import annotations

import subprocess
import sys


def test_the_store_readers_import_no_probe() -> None:
    code = ("import sys, pipeline.report.store_source, pipeline.schema1, pipeline.documents; "
            "print(sorted(m for m in sys.modules if m.startswith(('pipeline.probe', "
            "'dns.asyncquery', 'pipeline.runs'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", out
