"""Stock as of a moment and a product's history, checked against the ledger replayed here."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from inventory.db import Database
from inventory.models import Role, StockLevel, StockMovement
from inventory.stock import service
from inventory.stock.schemas import MovementCreate, TransferCreate
from tests.graphql.helpers import MOVEMENT, assert_same_page, gql
from tests.helpers import API, assert_problem, collect_pages, create, create_product, error_locs

LEVELS = f"{API}/stock"
REORDER = [3, 10, 0, 25]
"""One product per entry, with this reorder level."""


def history_url(product_id: int) -> str:
    return f"{API}/products/{product_id}/history"


@dataclass(frozen=True)
class Entry:
    id: int
    product_id: int
    warehouse_id: int
    quantity: int
    created_at: datetime

    @property
    def key(self) -> tuple[datetime, int]:
        return (self.created_at, self.id)


@dataclass
class History:
    """What the test made, and the ledger as the database holds it, in time order."""

    products: dict[int, int]
    """Product id → its reorder level."""
    warehouses: list[int]
    entries: list[Entry] = field(default_factory=list)
    level_ids: dict[tuple[int, int], int] = field(default_factory=dict)

    def levels_at(self, at: datetime) -> list[dict[str, Any]]:
        """The levels at ``at`` by replaying the ledger: the sum of each level's entries
        made at or before it, in the order of the levels' ids."""
        quantity: dict[tuple[int, int], int] = {}
        changed: dict[tuple[int, int], datetime] = {}
        for entry in self.entries:
            if entry.created_at <= at:
                level = (entry.product_id, entry.warehouse_id)
                quantity[level] = quantity.get(level, 0) + entry.quantity
                changed[level] = max(changed.get(level, entry.created_at), entry.created_at)
        return [
            {
                "product_id": p,
                "warehouse_id": w,
                "quantity": quantity[p, w],
                "reserved": None,
                "available": None,
                "on_order": None,
                "reorder_level": self.products[p],
                "updated_at": changed[p, w],
            }
            for (p, w) in sorted(quantity, key=lambda level: self.level_ids[level])
        ]

    def history(
        self,
        product_id: int,
        warehouse_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[tuple[int, int]]:
        """(entry id, running balance) of the product's entries, oldest first; the
        running balance adds up every entry in scope, those before ``since`` too."""
        running, answer = 0, []
        for entry in self.entries:
            if entry.product_id != product_id or warehouse_id not in (None, entry.warehouse_id):
                continue
            running += entry.quantity
            if (since is None or entry.created_at >= since) and (
                until is None or entry.created_at < until
            ):
                answer.append((entry.id, running))
        return answer


async def make_history(
    app: FastAPI, client: httpx.AsyncClient, movements: int, seed: int = 18
) -> History:
    """At least ``movements`` ledger entries over 4 products and 3 warehouses: receipts,
    shipments, adjustments both ways and transfers, recorded through the stock service."""
    warehouses = [
        (await create(client, "/warehouses", code=f"W{n}", name=f"Warehouse {n}"))["id"]
        for n in range(3)
    ]
    products = {
        (await create_product(client, f"HIST-{n}", reorder_level=reorder))["id"]: reorder
        for n, reorder in enumerate(REORDER)
    }
    made = History(products, warehouses)
    rng = random.Random(seed)
    on_hand: dict[tuple[int, int], int] = {}
    database: Database = app.state.db
    count = 0
    while count < movements:
        async with database.unit_of_work(write=True) as uow:
            for _ in range(min(200, movements - count)):
                product, warehouse = rng.choice(list(products)), rng.choice(warehouses)
                have = on_hand.get((product, warehouse), 0)
                roll = rng.random()
                # Transfers are two entries for one call: the history builds faster.
                if have == 0 or roll < 0.3:
                    kind, quantity = "receipt", rng.randint(1, 30)
                elif roll < 0.45:
                    kind, quantity = "shipment", rng.randint(1, have)
                elif roll < 0.6:
                    kind, quantity = "adjustment", rng.choice([-1, 1]) * rng.randint(1, have)
                else:
                    target = rng.choice([w for w in warehouses if w != warehouse])
                    moved = rng.randint(1, have)
                    await service.transfer_stock(
                        uow.session,
                        None,
                        TransferCreate.model_validate(
                            {
                                "product_id": product,
                                "from_warehouse_id": warehouse,
                                "to_warehouse_id": target,
                                "quantity": moved,
                            }
                        ),
                    )
                    on_hand[product, warehouse] = have - moved
                    on_hand[product, target] = on_hand.get((product, target), 0) + moved
                    count += 2
                    continue
                data = MovementCreate.model_validate(
                    {
                        "product_id": product,
                        "warehouse_id": warehouse,
                        "kind": kind,
                        "quantity": quantity,
                    }
                )
                await service.record_movement(uow.session, None, data)
                on_hand[product, warehouse] = have + data.delta
                count += 1
    async with database.unit_of_work(write=False) as uow:
        rows = await uow.session.execute(
            select(
                StockMovement.id,
                StockMovement.product_id,
                StockMovement.warehouse_id,
                StockMovement.quantity,
                StockMovement.created_at,
            )
        )
        made.entries = sorted((Entry(*row) for row in rows), key=lambda e: e.key)
        levels = await uow.session.execute(
            select(StockLevel.id, StockLevel.product_id, StockLevel.warehouse_id)
        )
        made.level_ids = {(p, w): level_id for level_id, p, w in levels}
    assert len(made.entries) >= movements
    return made


def instants(made: History, rng: random.Random, count: int = 20) -> list[datetime]:
    """Moments to ask about: exact entry times (transfer legs share theirs), moments
    strictly between two entries, before the first, after the last, and anywhere."""
    times = sorted({e.created_at for e in made.entries})
    first, last = times[0], times[-1]
    gaps = [(a, b) for a, b in pairwise(times) if b - a >= timedelta(microseconds=2)]
    entries_at = Counter(e.created_at for e in made.entries)
    shared = sorted(moment for moment, entries in entries_at.items() if entries > 1)
    picked = [first - timedelta(seconds=1), first, last, last + timedelta(seconds=1)]
    picked += rng.sample(shared, 2)
    picked += rng.sample(times, 6)
    picked += [a + (b - a) / 2 for a, b in rng.sample(gaps, 6)]
    while len(picked) < count:
        picked.append(first + (last - first) * rng.random())
    return picked


def as_of_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item | {"updated_at": datetime.fromisoformat(item["updated_at"])} for item in items]


async def test_levels_as_of_any_moment_equal_the_replayed_ledger(app, client, viewer):
    made = await make_history(app, client, 2000)
    rng = random.Random(7)
    moments = instants(made, rng)
    assert len(moments) == 20
    for at in moments:
        expected = made.levels_at(at)
        got = await collect_pages(viewer, LEVELS, as_of=at.isoformat(), limit=5)
        assert as_of_items(got) == expected, at
        for below in (True, False):
            narrowed = await collect_pages(
                viewer, LEVELS, as_of=at.isoformat(), below_reorder=below, limit=4
            )
            assert as_of_items(narrowed) == [
                level
                for level in expected
                if (level["quantity"] <= level["reorder_level"]) is below
            ], (at, below)

    # Before the first entry nothing existed; after the last, the levels are today's.
    assert made.levels_at(moments[0]) == []
    today = await collect_pages(viewer, LEVELS)
    assert [(x["product_id"], x["warehouse_id"], x["quantity"]) for x in today] == [
        (x["product_id"], x["warehouse_id"], x["quantity"]) for x in made.levels_at(moments[3])
    ]

    # One level, one warehouse; a time without a zone is UTC.
    product, warehouse = next(iter(made.products)), made.warehouses[1]
    at = moments[8]
    naive = at.astimezone(UTC).replace(tzinfo=None).isoformat()
    one = await collect_pages(
        viewer, LEVELS, as_of=naive, product_id=product, warehouse_id=warehouse
    )
    assert as_of_items(one) == [
        x
        for x in made.levels_at(at)
        if (x["product_id"], x["warehouse_id"]) == (product, warehouse)
    ]

    # The running balance of every entry, across page boundaries, every warehouse
    # and one, and within a time span.
    for product in made.products:
        got = await collect_pages(viewer, history_url(product), limit=37)
        assert [(e["id"], e["running_balance"]) for e in got] == made.history(product)
    product = next(iter(made.products))
    for warehouse in made.warehouses:
        got = await collect_pages(viewer, history_url(product), warehouse_id=warehouse, limit=23)
        assert [(e["id"], e["running_balance"]) for e in got] == made.history(product, warehouse)
    since, until = sorted(rng.sample(moments[4:], 2))
    for narrowed_to in (None, made.warehouses[0]):
        scope = {"warehouse_id": narrowed_to} if narrowed_to else {}
        got = await collect_pages(
            viewer,
            history_url(product),
            since=since.isoformat(),
            until=until.isoformat(),
            limit=11,
            **scope,
        )
        assert [(e["id"], e["running_balance"]) for e in got] == made.history(
            product, narrowed_to, since, until
        )


async def test_history_pages_one_entry_at_a_time_through_transfers(app, client, viewer):
    """Page boundaries everywhere, between the two legs of a transfer (one moment) too."""
    made = await make_history(app, client, 150, seed=3)
    product = next(iter(made.products))
    got = await collect_pages(viewer, history_url(product), limit=1)
    assert [(e["id"], e["running_balance"]) for e in got] == made.history(product)
    legs = [e for e in got if e["kind"] in ("transfer_out", "transfer_in")]
    assert legs, "the history holds transfers"

    # Each entry is a ledger entry as /stock/movements shows it, plus the total.
    ledger = {m["id"]: m for m in await collect_pages(viewer, f"{API}/stock/movements")}
    for entry in got:
        assert {k: v for k, v in entry.items() if k != "running_balance"} == ledger[entry["id"]]


LEVELS_AS_OF = """
query($asOf: DateTime, $f: StockLevelFilter, $first: Int, $after: String) {
  stockLevels(asOf: $asOf, filter: $f, first: $first, after: $after) {
    edges { cursor node { productId warehouseId quantity reserved available onOrder
                          reorderLevel updatedAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

HISTORY = f"""
query($id: ID!, $f: ProductHistoryFilter, $first: Int, $after: String) {{
  product(id: $id) {{
    history(filter: $f, first: $first, after: $after) {{
      edges {{ cursor node {{ {MOVEMENT} runningBalance }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""


async def test_graphql_answers_as_rest_does(app, client, viewer):
    made = await make_history(app, client, 300, seed=5)
    rng = random.Random(11)
    for at in instants(made, rng, count=6)[:6]:
        for flt in ({}, {"below_reorder": True}):
            cursor = None
            while True:
                params = {"as_of": at.isoformat(), "limit": 4, **flt}
                rest_page = (
                    await viewer.get(LEVELS, params=params | ({"cursor": cursor} if cursor else {}))
                ).json()
                body = await gql(
                    viewer,
                    LEVELS_AS_OF,
                    asOf=at.isoformat(),
                    f={"belowReorder": True} if flt else None,
                    first=4,
                    after=cursor,
                )
                assert "errors" not in body, body
                assert_same_page(body["data"]["stockLevels"], rest_page)
                cursor = rest_page["next_cursor"]
                if cursor is None:
                    break

    product = next(iter(made.products))
    times = sorted(e.created_at for e in made.entries)
    since = times[len(times) // 4]
    for rest_filter, graphql_filter in (
        ({}, None),
        ({"warehouse_id": made.warehouses[2]}, {"warehouseId": str(made.warehouses[2])}),
        ({"since": since.isoformat()}, {"since": since.isoformat()}),
    ):
        cursor = None
        pages = 0
        while True:
            params = {"limit": 9, **rest_filter} | ({"cursor": cursor} if cursor else {})
            rest_page = (await viewer.get(history_url(product), params=params)).json()
            body = await gql(
                viewer, HISTORY, id=str(product), f=graphql_filter, first=9, after=cursor
            )
            assert "errors" not in body, body
            assert_same_page(body["data"]["product"]["history"], rest_page)
            pages += 1
            cursor = rest_page["next_cursor"]
            if cursor is None:
                break
        assert pages > 1


async def test_a_moment_still_to_come_answers_with_the_ledger_so_far(client, viewer):
    warehouse = await create(client, "/warehouses", code="NOW", name="Now")
    product = await create_product(client, "NOW-1", reorder_level=2)
    for kind, quantity in (("receipt", 9), ("shipment", 4)):
        response = await client.post(
            f"{API}/stock/movements",
            json={
                "product_id": product["id"],
                "warehouse_id": warehouse["id"],
                "kind": kind,
                "quantity": quantity,
            },
        )
        assert response.status_code == 201, response.text
    later = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    [level] = (await viewer.get(LEVELS, params={"as_of": later})).json()["items"]
    [today] = (await viewer.get(LEVELS)).json()["items"]
    history = (await viewer.get(history_url(product["id"]))).json()
    assert [(e["kind"], e["quantity"], e["running_balance"]) for e in history["items"]] == [
        ("receipt", 9, 9),
        ("shipment", -4, 5),
    ]
    assert history["next_cursor"] is None
    # Rebuilt, the level was last changed when its last entry was recorded.
    assert level == today | {
        "reserved": None,
        "available": None,
        "on_order": None,
        "updated_at": history["items"][-1]["created_at"],
    }
    assert (today["quantity"], today["reserved"], today["available"]) == (5, 0, 5)


@pytest.mark.parametrize(
    ("url", "params", "loc"),
    [
        (LEVELS, {"as_of": "yesterday"}, ["query", "as_of"]),
        (LEVELS, {"as_of": "2026-13-01T00:00:00Z"}, ["query", "as_of"]),
        ("history", {"since": "not a time"}, ["query", "since"]),
        ("history", {"until": "2026-02-30"}, ["query", "until"]),
        ("history", {"warehouse_id": "0"}, ["query", "warehouse_id"]),
        ("history", {"cursor": "garbage!"}, ["query", "cursor"]),
        ("history", {"limit": "0"}, ["query", "limit"]),
    ],
)
async def test_bad_input_is_422(client, viewer, url, params, loc):
    product = await create_product(client, "BAD-1")
    target = history_url(product["id"]) if url == "history" else url
    response = await viewer.get(target, params=params)
    assert_problem(response, 422)
    assert error_locs(response) == [loc]


async def test_unknown_product_is_404_and_a_bad_id_422(viewer):
    assert_problem(await viewer.get(history_url(999_999)), 404)
    response = await viewer.get(history_url(0))
    assert_problem(response, 422)
    assert error_locs(response) == [["path", "product_id"]]


async def test_viewers_may_read_anonymous_callers_may_not(anonymous, accounts, client):
    product = await create_product(client, "AUTH-1")
    urls = [
        (history_url(product["id"]), {}),
        (LEVELS, {"as_of": "2026-01-01T00:00:00Z"}),
    ]
    for url, params in urls:
        assert_problem(await anonymous.get(url, params=params), 401)
        response = await anonymous.get(url, params=params, headers=accounts[Role.viewer].headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "next_cursor": None}


async def test_graphql_refuses_a_bad_moment_and_bad_history_filters(client, viewer):
    product = await create_product(client, "GQL-1")
    body = await gql(viewer, LEVELS_AS_OF, asOf="yesterday")
    assert body["errors"], body
    body = await gql(viewer, HISTORY, id=str(product["id"]), f={"warehouseId": "0"})
    assert body["data"] is None or body["data"]["product"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql(viewer, HISTORY, id=str(product["id"]), after="garbage!")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
