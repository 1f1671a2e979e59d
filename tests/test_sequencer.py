"""The sequencer: each level's changes come out in commit order, whatever order they came in."""

from __future__ import annotations

import asyncio

from inventory.events import StockChanged
from inventory.sequencer import LevelSequencer

HOLD = 0.2

EAST, WEST = 1, 2


def change(
    number: int, *, quantity: int = 0, warehouse: int = EAST, product: int = 7
) -> StockChanged:
    """The ``number``-th change of a level; movement ids grow with it, as in the ledger."""
    return StockChanged(product, warehouse, quantity, 100 * number + warehouse, number)


class Recorder:
    def __init__(self, **options: int) -> None:
        self.delivered: list[StockChanged] = []
        self.sequencer = LevelSequencer(self.delivered.append, hold_seconds=HOLD, **options)

    def send(self, *changes: StockChanged) -> None:
        for item in changes:
            self.sequencer.accept(item)

    def numbers(self, warehouse: int = EAST) -> list[int | None]:
        return [c.sequence for c in self.delivered if c.warehouse_id == warehouse]


async def test_in_order_changes_pass_straight_through():
    recorder = Recorder()
    recorder.send(change(5), change(6), change(7))
    assert recorder.numbers() == [5, 6, 7]  # the first one seen is delivered at once
    assert recorder.sequencer.held_count == 0


async def test_an_early_change_waits_for_its_predecessor():
    recorder = Recorder()
    recorder.send(change(1), change(3), change(4))
    assert recorder.numbers() == [1]
    recorder.send(change(2))
    assert recorder.numbers() == [1, 2, 3, 4]
    assert recorder.sequencer.held_count == 0


async def test_a_lost_predecessor_delays_its_level_by_the_hold_only():
    recorder = Recorder()
    recorder.send(change(1), change(3))
    await asyncio.sleep(HOLD / 2)
    assert recorder.numbers() == [1]
    await asyncio.sleep(HOLD)
    assert recorder.numbers() == [1, 3]
    recorder.send(change(4))  # in order again: no new wait
    assert recorder.numbers() == [1, 3, 4]
    recorder.send(change(2))  # the straggler is delivered late, not dropped
    assert recorder.numbers() == [1, 3, 4, 2]


async def test_a_held_change_is_released_with_the_ones_after_it():
    recorder = Recorder()
    recorder.send(change(1), change(3), change(5))
    await asyncio.sleep(HOLD * 1.5)
    assert recorder.numbers() == [1, 3, 5]
    recorder.send(change(6))
    assert recorder.numbers() == [1, 3, 5, 6]


async def test_a_quantity_back_where_it_was_does_not_pass_for_the_next_change():
    """10 -> 15 -> 10 -> 15: the last change starts from 10, as the level does now.

    Going by quantities alone, it would look like the next change; its number
    says two come before it.
    """
    recorder = Recorder()
    recorder.send(change(1, quantity=10))
    recorder.send(change(4, quantity=15))
    assert recorder.numbers() == [1]
    recorder.send(change(2, quantity=15), change(3, quantity=10))
    assert [c.quantity for c in recorder.delivered] == [10, 15, 10, 15]
    assert recorder.numbers() == [1, 2, 3, 4]


async def test_a_transfers_legs_are_ordered_each_in_its_own_level():
    recorder = Recorder()
    recorder.send(change(3, warehouse=EAST), change(2, warehouse=WEST))
    # A transfer's legs arrive before another process's earlier change to the source.
    recorder.send(change(5, warehouse=EAST), change(3, warehouse=WEST))
    assert recorder.numbers(EAST) == [3]
    assert recorder.numbers(WEST) == [2, 3]  # the other leg is not held back
    recorder.send(change(4, warehouse=EAST))
    assert recorder.numbers(EAST) == [3, 4, 5]


async def test_levels_do_not_wait_for_each_other():
    recorder = Recorder()
    recorder.send(change(1, product=1), change(1, product=2))
    recorder.send(change(3, product=1), change(2, product=2))
    assert [(c.product_id, c.sequence) for c in recorder.delivered] == [(1, 1), (2, 1), (2, 2)]


async def test_only_the_most_recent_levels_are_remembered():
    recorder = Recorder(max_levels=2)
    recorder.send(change(1, product=1), change(3, product=1))  # 3 held
    recorder.send(change(1, product=2), change(1, product=3))  # product 1 is forgotten...
    assert recorder.sequencer.level_count == 2
    assert [(c.product_id, c.sequence) for c in recorder.delivered][-2:] == [(1, 3), (3, 1)]
    assert recorder.sequencer.held_count == 0  # ...and what it held delivered, not dropped


async def test_a_level_holding_too_much_lets_go():
    recorder = Recorder(max_held=3)
    recorder.send(change(1), change(3), change(4), change(5))
    assert recorder.numbers() == [1]
    recorder.send(change(6))
    assert recorder.numbers() == [1, 3, 4, 5, 6]


async def test_a_restarted_numbering_is_followed():
    """The database was emptied: the level counts from 1 again, with new movement ids."""
    recorder = Recorder()
    recorder.send(change(1), change(2), change(3))
    fresh = [StockChanged(7, EAST, 0, 1000 + n, n) for n in (1, 2, 4, 3)]
    recorder.send(*fresh)
    assert recorder.numbers() == [1, 2, 3, 1, 2, 3, 4]


async def test_changes_without_a_number_are_delivered_as_they_come():
    recorder = Recorder()
    recorder.send(change(1), StockChanged(7, EAST, 0, 50), change(3))
    assert [c.movement_id for c in recorder.delivered] == [101, 50]
