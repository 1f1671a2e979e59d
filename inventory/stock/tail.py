"""Follow the end of the ledger in movement-id order, with no gap and no duplicate.

Movement ids are given at insert, not at commit, so on PostgreSQL movement 12
can commit, and be read, while movement 11 is still in flight. A reader that
sent 12 and moved on would never send 11; one that trusted the change feed's
order would have the same problem. So the tail reads the ledger itself and
sends entries only up to the first missing id. Ids are dense except where an
insert rolled back, so an id missing for ``SETTLE_SECONDS`` is taken as
rolled back and stepped over. (On SQLite writers take turns, so ids commit in
order and there are no holes to wait on.)

The limit: a movement whose transaction commits more than ``SETTLE_SECONDS``
after a higher-numbered one has is stepped over, and never sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from inventory.stock import service
from inventory.stock.service import LedgerEntry

BATCH = 500
SETTLE_SECONDS = 2.0


@dataclass
class _Hole:
    first: int
    last: int
    seen_at: float


class LedgerTail:
    """A cursor on the ledger: ``read`` returns what follows it, moving it on."""

    def __init__(
        self,
        after: int,
        *,
        settle_seconds: float = SETTLE_SECONDS,
        batch: int = BATCH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cursor = after
        """Every entry up to this id has been returned, or given up on."""
        self.more = False
        """The last read stopped at the batch size: read again at once."""
        self._settle = settle_seconds
        self._batch = batch
        self._clock = clock
        self._holes: list[_Hole] = []

    @property
    def waiting(self) -> bool:
        """Whether a missing id holds the cursor back."""
        return bool(self._holes)

    def settles_in(self) -> float | None:
        """Seconds until the oldest missing id is given up on; None when nothing is missing."""
        if not self._holes:
            return None
        oldest = min(hole.seen_at for hole in self._holes)
        return max(0.0, oldest + self._settle - self._clock())

    async def read(self, session: AsyncSession) -> list[LedgerEntry]:
        """The committed entries after the cursor, up to the first id that may still commit."""
        entries = await service.ledger_after(session, self.cursor, limit=self._batch)
        now = self._clock()
        taken: list[LedgerEntry] = []
        for entry in entries:
            if entry.id > self.cursor + 1 and not self._settled(self.cursor + 1, entry.id - 1, now):
                break
            taken.append(entry)
            self.cursor = entry.id
        self.more = len(entries) == self._batch and len(taken) == len(entries)
        self._holes = [hole for hole in self._holes if hole.last > self.cursor]
        return taken

    def _settled(self, first: int, last: int, now: float) -> bool:
        """Whether ids ``first..last``, missing now, have been missing long enough."""
        for hole in self._holes:
            if hole.first <= first <= hole.last:
                return now - hole.seen_at >= self._settle
        self._holes.append(_Hole(first, last, now))
        return self._settle <= 0
