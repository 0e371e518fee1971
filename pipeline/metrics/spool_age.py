"""How long the oldest undelivered document has waited in the Elasticsearch spool.

The spool keeps no time per record (its lines are the documents as sent), and it delivers in
order: so the age of the oldest undelivered one is the age of the oldest cycle not yet fully
delivered. This keeps, per cycle, when its records were spooled and how many, and drops them
from the front as the spool's pending count shows them delivered. Records an earlier process
left in the spool are dated from this process's start (they are at least that old).
"""

from __future__ import annotations

from collections import deque


class SpoolAge:
    """A FIFO of (unix time, records) batches mirroring what the spool still holds."""

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self._batches: deque[list[float]] = deque()  # [time, count]
        self._total = 0
        self._spooled: int | None = None  # the sink's cumulative spooled count at the last push

    def pushed(self, now: float, spooled: int, pending: int) -> None:
        """After a cycle: its records (the growth of the sink's ``spooled``) entered at ``now``."""
        if self._spooled is None:  # first sight: whatever is pending is from before this cycle
            self._spooled = spooled
            self._add(self.started_at, max(0, pending - spooled))
            self._add(now, min(spooled, pending))
        else:
            self._add(now, spooled - self._spooled)
            self._spooled = spooled
        self.seen(pending)

    def seen(self, pending: int) -> None:
        """The spool holds ``pending`` records: the oldest batches beyond that were delivered."""
        extra = self._total - pending
        while extra > 0 and self._batches:
            front = self._batches[0]
            take = min(extra, int(front[1]))
            front[1] -= take
            self._total -= take
            extra -= take
            if front[1] <= 0:
                self._batches.popleft()

    def age(self, now: float, pending: int) -> float:
        """Seconds the oldest undelivered record has waited (0 when the spool is empty)."""
        self.seen(pending)
        if pending <= 0:
            return 0.0
        if self._batches:
            oldest = self._batches[0][0]
        else:  # before the first cycle all is from an earlier process; after, not pushed yet
            oldest = self.started_at if self._spooled is None else now
        return max(0.0, now - oldest)

    def _add(self, at: float, count: int) -> None:
        if count > 0:
            self._batches.append([at, float(count)])
            self._total += count
