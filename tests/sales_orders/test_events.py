"""What a shipment announces once it commits: the order's number and status after it, and
per line the units and the movement that took them out; a refused shipment announces
nothing."""

from __future__ import annotations

import pytest

from inventory import events
from inventory.errors import NotAllocated
from inventory.models import Role
from inventory.sales_orders import service
from inventory.sales_orders.schemas import SalesOrderShip
from tests.helpers import API
from tests.sales_orders.conftest import done, line, new_order


async def test_a_shipment_announces_its_lines_and_movements(app, client, world, accounts):
    order = await new_order(
        client, line(world["bolt"], world["main"], 4), line(world["nut"], world["main"], 2)
    )
    await done(client, order["id"], "confirm")
    bolt, nut = (ln["id"] for ln in order["lines"])
    shipment = SalesOrderShip.model_validate(
        {"lines": [{"line_id": bolt, "quantity": 3}, {"line_id": nut, "quantity": 2}]}
    )
    async with app.state.db.unit_of_work(write=True) as uow:
        await service.ship(uow.session, accounts[Role.clerk].id, order["id"], shipment)
        announced = events.take(uow.session)
        events.record(uow.session, *announced)  # still delivered on commit

    [shipped] = [e for e in announced if isinstance(e, events.SalesOrderShipped)]
    ledger = (await client.get(f"{API}/stock/movements", params={"kind": "shipment"})).json()
    movements = {m["product_id"]: m["id"] for m in ledger["items"]}
    assert {m["reference"] for m in ledger["items"]} == {order["number"]}
    assert shipped == events.SalesOrderShipped(
        order_id=order["id"],
        number=order["number"],
        status="partially_shipped",
        lines=(
            events.OrderLineMoved(bolt, world["bolt"], world["main"], 3, movements[world["bolt"]]),
            events.OrderLineMoved(nut, world["nut"], world["main"], 2, movements[world["nut"]]),
        ),
    )

    too_many = SalesOrderShip.model_validate({"lines": [{"line_id": bolt, "quantity": 2}]})
    async with app.state.db.unit_of_work(write=True) as uow:
        with pytest.raises(NotAllocated):
            await service.ship(uow.session, accounts[Role.clerk].id, order["id"], too_many)
        assert events.take(uow.session) == []
