"""What a receipt announces once it commits: the order's number and status after it, and
per line the units and the movement that brought them in; a refused receipt announces
nothing."""

from __future__ import annotations

import pytest

from inventory import events
from inventory.errors import OverReceipt
from inventory.models import Role
from inventory.purchase_orders import service
from inventory.purchase_orders.schemas import PurchaseOrderReceive
from tests.purchase_orders.conftest import placed_order, receipts_of


async def test_a_receipt_announces_its_lines_and_movements(app, client, world, accounts):
    order = await placed_order(client, world, ("bolt", 5, "1"), ("nut", 2, "1"))
    bolt, nut = (line["id"] for line in order["lines"])
    receipt = PurchaseOrderReceive.model_validate(
        {"lines": [{"line_id": bolt, "quantity": 2}, {"line_id": nut, "quantity": 2}]}
    )
    async with app.state.db.unit_of_work(write=True) as uow:
        await service.receive(uow.session, accounts[Role.clerk].id, order["id"], receipt)
        announced = events.take(uow.session)
        events.record(uow.session, *announced)  # still delivered on commit

    [received] = [e for e in announced if isinstance(e, events.PurchaseOrderReceived)]
    movements = {m["product_id"]: m["id"] for m in await receipts_of(client, order["number"])}
    assert received == events.PurchaseOrderReceived(
        order_id=order["id"],
        number=order["number"],
        status="partially_received",
        lines=(
            events.OrderLineMoved(bolt, world["bolt"], world["main"], 2, movements[world["bolt"]]),
            events.OrderLineMoved(nut, world["nut"], world["main"], 2, movements[world["nut"]]),
        ),
    )
    on_order = {
        (e.product_id, e.warehouse_id) for e in announced if isinstance(e, events.OnOrderChanged)
    }
    assert on_order == {(world["bolt"], world["main"]), (world["nut"], world["main"])}

    too_many = PurchaseOrderReceive.model_validate({"lines": [{"line_id": bolt, "quantity": 4}]})
    async with app.state.db.unit_of_work(write=True) as uow:
        with pytest.raises(OverReceipt):
            await service.receive(uow.session, accounts[Role.clerk].id, order["id"], too_many)
        assert events.take(uow.session) == []
