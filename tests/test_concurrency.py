"""Concurrent writers through the API: no lost updates, no "database is locked"."""

from __future__ import annotations

import asyncio

from tests.helpers import API, create_product


async def test_concurrent_creates_all_succeed(client):
    responses = await asyncio.gather(
        *(client.post(f"{API}/categories", json={"name": f"C{n:02d}"}) for n in range(20))
    )
    assert sorted(r.status_code for r in responses) == [201] * 20
    listing = (await client.get(f"{API}/categories", params={"limit": 50})).json()
    assert len(listing["items"]) == 20


async def test_concurrent_duplicate_creates_give_one_winner(client):
    responses = await asyncio.gather(
        *(client.post(f"{API}/categories", json={"name": "Same"}) for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9


async def test_concurrent_patches_with_same_if_match_give_one_winner(client):
    product = await create_product(client, "RACE-1")
    url = f"{API}/products/{product['id']}"
    responses = await asyncio.gather(
        *(
            client.patch(url, json={"name": f"Writer {n}"}, headers={"If-Match": '"1"'})
            for n in range(8)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 7, [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    current = (await client.get(url)).json()
    assert current["version"] == 2
    assert current["name"] == winner["name"]


async def test_concurrent_patches_without_if_match_all_apply_in_turn(client):
    product = await create_product(client, "RACE-2")
    url = f"{API}/products/{product['id']}"
    responses = await asyncio.gather(
        *(client.patch(url, json={"reorder_level": n}) for n in range(1, 9))
    )
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == list(range(2, 10))
    assert (await client.get(url)).json()["version"] == 9
