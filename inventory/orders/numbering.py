"""Order numbers (``PO-000001``, ``SO-000001``): consecutive per kind, with no gaps.

The counter row of a kind is raised in the transaction that creates the
order, by one upsert that takes the row's lock: creators of one kind take
turns on every worker and machine, and a creation that rolls back takes its
number back with it.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from inventory.kit.persistence import insert_for
from inventory.models import OrderNumber

OrderKind = Literal["PO", "SO"]


async def next_number(session: AsyncSession, kind: OrderKind) -> str:
    """The next number of ``kind``, taken in the session's transaction."""
    stmt = (
        insert_for(session, OrderNumber)
        .values(kind=kind, last_number=1)
        .on_conflict_do_update(
            index_elements=["kind"], set_={"last_number": OrderNumber.last_number + 1}
        )
        .returning(OrderNumber.last_number)
    )
    number = int((await session.execute(stmt)).scalar_one())
    return f"{kind}-{number:06d}"
