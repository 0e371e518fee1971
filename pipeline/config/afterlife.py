"""The ``[afterlife]`` section: checks of retired addresses, off unless a duration is given.

    [afterlife]
    duration = "2d"        # keep checking an address this long after its last run ended
    max_addresses = 64     # retired addresses checked per cycle at most (newest first)
"""

from __future__ import annotations

from typing import Any

from pipeline.config.model import Afterlife, default
from pipeline.config.reader import Reader


def parse_afterlife(r: Reader, parsed: Any) -> dict[str, Any]:
    """``afterlife``: a duration in the project's grammar (0 or absent: off) and a cap."""
    table, p = r.table("afterlife"), "afterlife."
    r.unknown(table, {"duration", "max_addresses"}, p)
    duration = r.duration(table, "duration", p, default(Afterlife, "duration_s"))
    cap = r.integer(table, "max_addresses", p, default(Afterlife, "max_addresses"), 1)
    return {"afterlife": Afterlife(duration_s=duration, max_addresses=cap)}
