"""Assertions and request helpers shared by the API tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from inventory.models import StockLevel, StockMovement
from inventory.stock.service import find_ledger_discrepancies

API = "/api/v1"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status``, carrying the request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance", "request_id"} <= body.keys()
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


def error_locs(response: httpx.Response) -> list[list[Any]]:
    body = assert_problem(response, 422)
    return [error["loc"] for error in body["errors"]]


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """Sign in through the OAuth2 password form."""
    return await client.post(f"{API}/auth/token", data={"username": email, "password": password})


async def create(client: httpx.AsyncClient, path: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(f"{API}{path}", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_product(client: httpx.AsyncClient, sku: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", f"Product {sku}")
    fields.setdefault("unit_price", "1.00")
    return await create(client, "/products", sku=sku, **fields)


async def receive_stock(
    client: httpx.AsyncClient, product_id: int, warehouse_id: int, quantity: int
) -> httpx.Response:
    """Record a receipt of ``quantity`` through the API."""
    return await client.post(
        f"{API}/stock/movements",
        json={
            "product_id": product_id,
            "warehouse_id": warehouse_id,
            "kind": "receipt",
            "quantity": quantity,
        },
    )


async def collect_pages(client: httpx.AsyncClient, url: str, **params: Any) -> list[dict[str, Any]]:
    """Follow ``next_cursor`` to the end and return every item."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = dict(params) | ({"cursor": cursor} if cursor else {})
        response = await client.get(url, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def assert_ledger_consistent(engine: AsyncEngine) -> None:
    """Every level equals the sum of its movements (what `inventory check-ledger` checks),
    every movement's balance is its level's running sum up to it, and every level's
    movement count is the number of its movements."""
    async with AsyncSession(engine) as session:
        assert await find_ledger_discrepancies(session) == []
        rows = await session.execute(
            select(
                StockMovement.id,
                StockMovement.product_id,
                StockMovement.warehouse_id,
                StockMovement.quantity,
                StockMovement.balance,
            ).order_by(StockMovement.id)
        )
        running: dict[tuple[int, int], int] = {}
        counts: Counter[tuple[int, int]] = Counter()
        wrong = []
        for movement_id, product_id, warehouse_id, quantity, balance in rows:
            key = (product_id, warehouse_id)
            running[key] = running.get(key, 0) + quantity
            counts[key] += 1
            if balance != running[key]:
                wrong.append((movement_id, balance, running[key]))
        assert wrong == [], "(movement, balance, running sum)"
        levels = await session.execute(
            select(StockLevel.product_id, StockLevel.warehouse_id, StockLevel.movement_count)
        )
        miscounted = [(p, w, n, counts[p, w]) for p, w, n in levels if n != counts[p, w]]
        assert miscounted == [], "(product, warehouse, movement_count, movements)"


def request_then_hang_up(hung_up: asyncio.Event) -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive``: one empty request, then a disconnect once ``hung_up`` is set."""
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await hung_up.wait()
        return {"type": "http.disconnect"}

    return receive
