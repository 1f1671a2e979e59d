"""Idempotency-Key on stock writes: replays return the first answer and record nothing new."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from inventory import idempotency
from inventory.errors import (
    DomainError,
    InsufficientStock,
    ServiceUnavailable,
    TooManyRequests,
    ValidationFailed,
)
from inventory.models import Role
from tests.helpers import API, assert_ledger_consistent, assert_problem, create, create_product

MOVEMENTS = f"{API}/stock/movements"
TRANSFERS = f"{API}/stock/transfers"


@pytest.fixture
async def body(client: httpx.AsyncClient) -> dict[str, Any]:
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "IDEM-1")
    return {
        "product_id": product["id"],
        "warehouse_id": warehouse["id"],
        "kind": "receipt",
        "quantity": 5,
    }


async def ledger_size(client: httpx.AsyncClient) -> int:
    return len((await client.get(MOVEMENTS, params={"limit": 200})).json()["items"])


async def test_replay_returns_the_first_answer_and_writes_nothing(client, body):
    headers = {"Idempotency-Key": "order-42-line-1"}
    first = await client.post(MOVEMENTS, json=body, headers=headers)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    replay = await client.post(MOVEMENTS, json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert await ledger_size(client) == 1


async def test_same_body_in_another_key_order_is_the_same_request(client, body):
    headers = {"Idempotency-Key": "k1"}
    await client.post(MOVEMENTS, json=body, headers=headers)
    reordered = dict(reversed(list(body.items())))
    replay = await client.post(MOVEMENTS, json=reordered, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"


async def test_same_key_with_a_different_body_is_422(client, body):
    headers = {"Idempotency-Key": "k2"}
    await client.post(MOVEMENTS, json=body, headers=headers)
    response = await client.post(MOVEMENTS, json=body | {"quantity": 6}, headers=headers)
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await ledger_size(client) == 1


async def test_same_key_on_another_endpoint_is_422(client, body):
    headers = {"Idempotency-Key": "k3"}
    await client.post(MOVEMENTS, json=body, headers=headers)
    other = await create(client, "/warehouses", code="EAST", name="East")
    transfer = {
        "product_id": body["product_id"],
        "from_warehouse_id": body["warehouse_id"],
        "to_warehouse_id": other["id"],
        "quantity": 1,
    }
    assert_problem(await client.post(TRANSFERS, json=transfer, headers=headers), 422)


async def test_keys_belong_to_their_user(client, anonymous, accounts, body):
    headers = {"Idempotency-Key": "shared-name"}
    await client.post(MOVEMENTS, json=body, headers=headers)
    clerk = await anonymous.post(
        MOVEMENTS, json=body, headers=headers | accounts[Role.clerk].headers
    )
    assert clerk.status_code == 201
    assert "idempotent-replayed" not in clerk.headers
    assert await ledger_size(client) == 2


async def test_a_refusal_is_the_answer_even_after_stock_arrives(client, body, engine):
    headers = {"Idempotency-Key": "ship-early"}
    shipment = body | {"kind": "shipment", "quantity": 3}
    first = await client.post(MOVEMENTS, json=shipment, headers=headers)
    assert_problem(first, 409)
    assert "idempotent-replayed" not in first.headers
    await client.post(MOVEMENTS, json=body)  # stock arrives
    replay = await client.post(MOVEMENTS, json=shipment, headers=headers)
    assert replay.status_code == 409
    assert replay.headers["content-type"] == "application/problem+json"
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert await ledger_size(client) == 1, "only the receipt was recorded"
    await assert_ledger_consistent(engine)
    # A new key is a new request: now it succeeds.
    fresh = await client.post(MOVEMENTS, json=shipment, headers={"Idempotency-Key": "ship-now"})
    assert fresh.status_code == 201


async def test_a_refused_transfer_leaves_nothing_behind_but_its_answer(client, body, engine):
    other = await create(client, "/warehouses", code="WEST", name="West")
    transfer = {
        "product_id": body["product_id"],
        "from_warehouse_id": body["warehouse_id"],
        "to_warehouse_id": other["id"],
        "quantity": 2,
    }
    headers = {"Idempotency-Key": "move-early"}
    first = await client.post(TRANSFERS, json=transfer, headers=headers)
    assert_problem(first, 409)
    await client.post(MOVEMENTS, json=body)
    replay = await client.post(TRANSFERS, json=transfer, headers=headers)
    assert (replay.status_code, replay.json()) == (409, first.json())
    levels = (await client.get(f"{API}/stock", params={"product_id": body["product_id"]})).json()
    assert {(lv["warehouse_id"], lv["quantity"]) for lv in levels["items"]} == {
        (body["warehouse_id"], 5)
    }
    await assert_ledger_consistent(engine)


async def test_transfer_replay(client, body, engine):
    other = await create(client, "/warehouses", code="EAST", name="East")
    await client.post(MOVEMENTS, json=body)
    transfer = {
        "product_id": body["product_id"],
        "from_warehouse_id": body["warehouse_id"],
        "to_warehouse_id": other["id"],
        "quantity": 2,
    }
    headers = {"Idempotency-Key": "t-1"}
    first = await client.post(TRANSFERS, json=transfer, headers=headers)
    replay = await client.post(TRANSFERS, json=transfer, headers=headers)
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert await ledger_size(client) == 3
    await assert_ledger_consistent(engine)


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\tkey", "ünïcode"])
async def test_bad_keys_are_422(client, body, key):
    response = await client.post(
        MOVEMENTS, json=body, headers={"Idempotency-Key": key.encode("utf-8")}
    )
    assert_problem(response, 422)
    assert await ledger_size(client) == 0


async def test_longest_key_is_accepted(client, body):
    response = await client.post(MOVEMENTS, json=body, headers={"Idempotency-Key": "k" * 255})
    assert response.status_code == 201


async def test_fifty_concurrent_replays_make_exactly_one_movement(client, body, engine):
    headers = {"Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *(client.post(MOVEMENTS, json=body, headers=headers) for _ in range(50))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses if r.status_code >= 500]
    created = [r for r in responses if r.status_code == 201]
    assert len([r for r in created if "idempotent-replayed" not in r.headers]) == 1
    assert len({r.json()["id"] for r in created}) == 1
    assert await ledger_size(client) == 1
    await assert_ledger_consistent(engine)


async def test_two_idempotency_key_headers_are_422(client, body):
    response = await client.post(
        MOVEMENTS, json=body, headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await ledger_size(client) == 0


async def test_any_write_front_can_answer_once_without_http(engine: AsyncEngine, accounts):
    user_id = accounts[Role.clerk].id
    runs: list[int] = []

    async def work() -> idempotency.StoredResponse:
        runs.append(len(runs) + 1)
        return idempotency.StoredResponse(201, f'{{"run": {len(runs)}}}')

    async def answer(key: str | None, request_hash: str) -> idempotency.StoredResponse:
        async with AsyncSession(engine) as session, session.begin():
            return await idempotency.answer_once(
                session, user_id, key, request_hash, work, lambda _: None
            )

    first = await answer("front-1", "hash-a")
    again = await answer("front-1", "hash-a")
    assert (first.replayed, again.replayed) == (False, True)
    assert (again.status, again.body) == (201, '{"run": 1}')
    with pytest.raises(ValidationFailed):
        await answer("front-1", "hash-b")
    assert (await answer(None, "hash-a")).body == '{"run": 2}'
    assert (await answer(None, "hash-a")).body == '{"run": 3}', "no key: the work runs each time"


async def test_only_the_refusals_a_front_keeps_use_up_the_key(app, accounts):
    """A refusal the front keeps is stored (and what the work wrote is undone); one it does not
    keep (a rate limit, an unavailable service) leaves the key free for a retry."""
    user_id = accounts[Role.clerk].id
    failures: list[DomainError] = [
        ServiceUnavailable("busy"),
        TooManyRequests("slow down", 1),
        InsufficientStock(product_id=1, warehouse_id=1, available=0, requested=1),
    ]

    async def work() -> idempotency.StoredResponse:
        if failures:
            raise failures.pop(0)
        return idempotency.StoredResponse(201, "{}")

    def keep(exc: DomainError) -> idempotency.StoredResponse | None:
        if isinstance(exc, ServiceUnavailable | TooManyRequests):
            return None
        return idempotency.StoredResponse(409, '{"kept": true}')

    async def answer() -> idempotency.StoredResponse:
        async with app.state.db.unit_of_work(write=True) as uow:
            return await idempotency.answer_once(uow.session, user_id, "k", "h", work, keep)

    with pytest.raises(ServiceUnavailable):
        await answer()
    with pytest.raises(TooManyRequests):
        await answer()
    kept = await answer()
    assert (kept.status, kept.body, kept.replayed) == (409, '{"kept": true}', False)
    again = await answer()
    assert (again.status, again.body, again.replayed) == (409, '{"kept": true}', True)
