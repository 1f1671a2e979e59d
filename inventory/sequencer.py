"""Put each stock level's changes back in commit order before they are fanned out.

A process hears of changes from two places that race: its own requests, right
after they commit, and the other processes, through Redis. A change made here
can so arrive before an earlier change of the same level made elsewhere.
Every level numbers its changes 1, 2, 3, ... in commit order (the level's
movement count, raised in the same statement as its quantity, under the row
lock; see ``StockChanged.sequence``), so the right order is known exactly:

- the first change this process sees of a level is delivered at once (there
  is nothing to compare it with);
- the level's next number is delivered at once, then any held successors;
- a change that skips numbers is held until the missing ones arrive, or for at
  most ``hold_seconds``, then released anyway: a change lost while Redis was
  down must not stall its level for good;
- a change older than one already delivered (it came after its hold ran out,
  or before this process first saw the level) is delivered late rather than
  dropped; a listener that keeps the latest quantity compares movement ids.

Nothing is ever dropped: each change is delivered once, in order or late.

Only the ``max_levels`` most recently changed levels are remembered (LRU): a
level forgotten is "first seen" again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from inventory.events import StockChanged

HOLD_SECONDS = 1.0
MAX_LEVELS = 100_000
MAX_HELD_PER_LEVEL = 1000
"""A level with more changes than this waiting on a gap is released at once."""

Level = tuple[int, int]


@dataclass(slots=True)
class _LevelState:
    sequence: int
    """The number of the last change delivered in order."""
    movement_id: int
    held: dict[int, tuple[StockChanged, float]] = field(default_factory=dict)
    """Changes waiting for a missing predecessor: number -> (change, release time)."""
    timer: asyncio.TimerHandle | None = None


class LevelSequencer:
    """Deliver each level's changes in their commit order, holding early ones briefly."""

    def __init__(
        self,
        deliver: Callable[[StockChanged], None],
        *,
        hold_seconds: float = HOLD_SECONDS,
        max_levels: int = MAX_LEVELS,
        max_held: int = MAX_HELD_PER_LEVEL,
    ) -> None:
        self._deliver = deliver
        self._hold = hold_seconds
        self._max_levels = max_levels
        self._max_held = max_held
        self._levels: OrderedDict[Level, _LevelState] = OrderedDict()

    @property
    def held_count(self) -> int:
        return sum(len(state.held) for state in self._levels.values())

    @property
    def level_count(self) -> int:
        return len(self._levels)

    def accept(self, change: StockChanged) -> None:
        """Deliver ``change`` now (with any successors it unblocks), or hold it."""
        number = change.sequence
        if number is None:
            self._deliver(change)  # nothing to order it by
            return
        key = (change.product_id, change.warehouse_id)
        state = self._levels.get(key)
        if state is None:
            self._remember(key, _LevelState(number, change.movement_id))
            self._deliver(change)
            return
        self._levels.move_to_end(key)
        if number <= state.sequence:
            self._behind(state, number, change)
        elif number == state.sequence + 1:
            self._in_order(state, number, change)
            self._successors(state)
        elif number in state.held:
            self._deliver(change)  # two changes with one number: the numbering restarted
        else:
            state.held[number] = (change, self._now() + self._hold)
            if len(state.held) > self._max_held:
                self._release(state, max(state.held))
        self._schedule(key, state)

    def close(self) -> None:
        """Forget everything held (the feed is stopping) and cancel the timers."""
        for state in self._levels.values():
            if state.timer is not None:
                state.timer.cancel()
        self._levels.clear()

    def _behind(self, state: _LevelState, number: int, change: StockChanged) -> None:
        if change.movement_id > state.movement_id:
            # Numbered lower yet made later: the level's numbering restarted (the
            # database was restored or emptied). Follow it from here.
            self._release(state, max(state.held, default=0))
            state.sequence, state.movement_id = number, change.movement_id
        self._deliver(change)

    def _in_order(self, state: _LevelState, number: int, change: StockChanged) -> None:
        state.sequence, state.movement_id = number, change.movement_id
        self._deliver(change)

    def _successors(self, state: _LevelState) -> None:
        while (successor := state.held.pop(state.sequence + 1, None)) is not None:
            self._in_order(state, state.sequence + 1, successor[0])

    def _release(self, state: _LevelState, up_to: int) -> None:
        """Give up waiting for the gaps below ``up_to``: deliver what is held up to it."""
        for number in sorted(n for n in state.held if n <= up_to):
            self._in_order(state, number, state.held.pop(number)[0])
        self._successors(state)

    def _expire(self, key: Level) -> None:
        state = self._levels.get(key)
        if state is None:
            return
        state.timer = None
        now = self._now()
        expired = [s for s, (_, release_at) in state.held.items() if release_at <= now]
        if expired:
            self._release(state, max(expired))
        self._schedule(key, state)

    def _schedule(self, key: Level, state: _LevelState) -> None:
        """Keep one timer per level, for its earliest release time, while anything is held."""
        if not state.held:
            if state.timer is not None:
                state.timer.cancel()
                state.timer = None
            return
        if state.timer is None:
            release_at = min(release_at for _, release_at in state.held.values())
            loop = asyncio.get_running_loop()
            state.timer = loop.call_at(release_at, self._expire, key)

    def _remember(self, key: Level, state: _LevelState) -> None:
        self._levels[key] = state
        while len(self._levels) > self._max_levels:
            _, oldest = self._levels.popitem(last=False)
            if oldest.timer is not None:
                oldest.timer.cancel()
            self._release(oldest, max(oldest.held, default=0))

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()
