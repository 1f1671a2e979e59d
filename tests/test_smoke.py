"""A first end-to-end check that the stack answers on every backend."""

from tests.helpers import API


async def test_health(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_empty_category_list(client):
    response = await client.get(f"{API}/categories")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}
