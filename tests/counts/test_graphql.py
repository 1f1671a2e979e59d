"""Stock counts over GraphQL: every operation answers what REST answers, and refuses alike."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.counts.test_counts import COUNTS, level, move, record
from tests.graphql.helpers import as_rest, gql, rest
from tests.helpers import API, assert_ledger_consistent, collect_pages

LINE = "productId expected counted countedAt difference"
COUNT = f"id status warehouseId startedAt finishedAt userId lines {{ {LINE} }}"
ERRORS = (
    "... on NotFound { message } ... on Conflict { message } "
    "... on InsufficientStock { message available requested } "
    "... on ValidationFailed { message errors { loc msg type } }"
)
OPEN = (
    "mutation($input: OpenCountInput!) { openCount(input: $input) "
    f"{{ __typename ... on Count {{ {COUNT} }} {ERRORS} }} }}"
)
RECORD = (
    "mutation($id: ID!, $productId: ID!, $input: RecordCountInput!) "
    "{ recordCount(id: $id, productId: $productId, input: $input) "
    f"{{ __typename ... on CountLine {{ {LINE} product {{ sku }} }} {ERRORS} }} }}"
)
FINISH = (
    "mutation($id: ID!) { finishCount(id: $id) "
    f"{{ __typename ... on FinishedCount {{ {COUNT} movementIds }} {ERRORS} }} }}"
)
CANCEL = (
    "mutation($id: ID!) { cancelCount(id: $id) "
    f"{{ __typename ... on Count {{ {COUNT} }} {ERRORS} }} }}"
)
ONE = f"query($id: ID!) {{ count(id: $id) {{ {COUNT} }} }}"
LIST = (
    "query($f: CountFilter, $first: Int, $after: String) "
    "{ counts(filter: $f, first: $first, after: $after) "
    f"{{ edges {{ cursor node {{ {COUNT} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
)


def count_as_rest(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL Count as REST writes it, to compare with ``rest_count``."""
    shaped = as_rest({k: v for k, v in node.items() if k not in ("lines", "__typename")})
    shaped["status"] = shaped["status"].lower()
    shaped["lines"] = [as_rest(line) for line in node["lines"]]
    if "movement_ids" in shaped:
        shaped["movement_ids"] = [int(i) for i in shaped["movement_ids"]]
    return shaped


def rest_count(item: dict[str, Any]) -> dict[str, Any]:
    return rest(item) | {"lines": [rest(line) for line in item["lines"]]}


async def rest_get(client: httpx.AsyncClient, count_id: int | str) -> dict[str, Any]:
    response = await client.get(f"{COUNTS}/{count_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_operation_answers_as_rest(client, viewer, world, engine):
    bolt, nut, main = world["bolt"], world["nut"], world["main"]
    await move(client, bolt, main, "receipt", 100)
    await move(client, nut, main, "receipt", 4)

    opened = (await gql(client, OPEN, input={"warehouseId": str(main)}))["data"]["openCount"]
    assert opened["__typename"] == "Count"
    count_id = opened["id"]
    assert count_as_rest(opened) == rest_count(await rest_get(client, count_id))
    assert [(li["productId"], li["expected"]) for li in opened["lines"]] == [
        (str(bolt), 100),
        (str(nut), 4),
    ]

    await move(client, bolt, main, "shipment", 5)
    line = (await gql(client, RECORD, id=count_id, productId=str(bolt), input={"counted": 90}))[
        "data"
    ]["recordCount"]
    assert line["__typename"] == "CountLine"
    assert (line["expected"], line["counted"], line["difference"]) == (95, 90, -5)
    assert line["product"] == {"sku": "BOLT-1"}
    shown = await rest_get(client, count_id)
    by_rest = next(x for x in shown["lines"] if x["product_id"] == bolt)
    assert as_rest({k: v for k, v in line.items() if k not in ("product", "__typename")}) == rest(
        by_rest
    )

    one = (await gql(viewer, ONE, id=count_id))["data"]["count"]
    assert count_as_rest(one) == rest_count(shown)
    assert (await gql(viewer, ONE, id="999"))["data"]["count"] is None

    await move(client, bolt, main, "shipment", 3)
    finished = (await gql(client, FINISH, id=count_id))["data"]["finishCount"]
    assert finished["__typename"] == "FinishedCount"
    assert finished["status"] == "FINISHED"
    assert await level(client, bolt, main) == 87
    (adjustment,) = await collect_pages(client, f"{API}/stock/movements", kind="adjustment")
    assert finished["movementIds"] == [str(adjustment["id"])]
    assert adjustment["reference"] == f"count:{count_id}"
    expected = rest_count(await rest_get(client, count_id)) | {"movement_ids": [adjustment["id"]]}
    assert count_as_rest(finished) == expected

    other = (await gql(client, OPEN, input={"warehouseId": str(main), "productIds": [str(nut)]}))[
        "data"
    ]["openCount"]
    cancelled = (await gql(client, CANCEL, id=other["id"]))["data"]["cancelCount"]
    assert cancelled["status"] == "CANCELLED"
    assert count_as_rest(cancelled) == rest_count(await rest_get(client, other["id"]))
    again = (await gql(client, CANCEL, id=other["id"]))["data"]["cancelCount"]
    assert again == cancelled


@pytest.mark.parametrize(
    ("graphql_filter", "params"),
    [(None, {}), ({"status": "OPEN"}, {"status": "open"}), ({"warehouseId": "@east"}, {})],
)
async def test_counts_page_as_rest(client, viewer, world, graphql_filter, params):
    for warehouse in ("main", "east"):
        await move(client, world["bolt"], world[warehouse], "receipt", 1)
    ids = [
        (await client.post(COUNTS, json={"warehouse_id": world[w]})).json()["id"]
        for w in ("main", "east", "main", "east", "main")
    ]
    await client.post(f"{COUNTS}/{ids[0]}/cancel")
    if graphql_filter and graphql_filter.get("warehouseId") == "@east":
        graphql_filter, params = (
            {"warehouseId": str(world["east"])},
            {"warehouse_id": world["east"]},
        )
    variables = {} if graphql_filter is None else {"f": graphql_filter}
    after, pages = None, 0
    while True:
        page = (await gql(viewer, LIST, first=2, after=after, **variables))["data"]["counts"]
        cursor: dict[str, str] = {"cursor": after} if after else {}
        expected = (await viewer.get(COUNTS, params=params | cursor | {"limit": 2})).json()
        assert [count_as_rest(e["node"]) for e in page["edges"]] == [
            rest_count(x) for x in expected["items"]
        ]
        assert page["pageInfo"]["endCursor"] == expected["next_cursor"]
        pages += 1
        if expected["next_cursor"] is None:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages >= 1


async def test_refusals_are_typed_as_rest_refuses(client, world):
    bolt, nut, main = world["bolt"], world["nut"], world["main"]
    await move(client, bolt, main, "receipt", 10)

    both = (
        await gql(
            client,
            OPEN,
            input={"warehouseId": str(main), "productIds": [str(bolt)], "categoryId": "1"},
        )
    )["data"]["openCount"]
    assert both["__typename"] == "ValidationFailed"
    assert [e["loc"] for e in both["errors"]] == [["input", "categoryId"]]
    unknown = (
        await gql(client, OPEN, input={"warehouseId": str(main), "productIds": [str(bolt), "999"]})
    )["data"]["openCount"]
    assert [e["loc"] for e in unknown["errors"]] == [["input", "productIds", "1"]]
    assert unknown["errors"][0]["type"] == "missing_reference"
    assert (await gql(client, OPEN, input={"warehouseId": "999"}))["data"]["openCount"]["errors"][
        0
    ]["loc"] == ["input", "warehouseId"]

    count_id = (await client.post(COUNTS, json={"warehouse_id": main})).json()["id"]
    negative = (
        await gql(client, RECORD, id=str(count_id), productId=str(bolt), input={"counted": -1})
    )["data"]["recordCount"]
    assert [e["loc"] for e in negative["errors"]] == [["input", "counted"]]
    bad_id = (await gql(client, RECORD, id=str(count_id), productId="x", input={"counted": 1}))[
        "data"
    ]["recordCount"]
    assert [e["loc"] for e in bad_id["errors"]] == [["productId"]]
    absent = (
        await gql(client, RECORD, id=str(count_id), productId=str(nut), input={"counted": 1})
    )["data"]["recordCount"]
    assert absent["__typename"] == "NotFound"

    await record(client, count_id, bolt, 1)
    await move(client, bolt, main, "shipment", 5)
    short = (await gql(client, FINISH, id=str(count_id)))["data"]["finishCount"]
    assert short["__typename"] == "InsufficientStock"
    assert (short["available"], short["requested"]) == (5, 9)
    assert (await rest_get(client, count_id))["status"] == "open"

    await record(client, count_id, bolt, 5)
    assert (await gql(client, FINISH, id=str(count_id)))["data"]["finishCount"][
        "__typename"
    ] == "FinishedCount"
    twice = (await gql(client, FINISH, id=str(count_id)))["data"]["finishCount"]
    assert twice["__typename"] == "Conflict"
    assert (await gql(client, CANCEL, id=str(count_id)))["data"]["cancelCount"][
        "__typename"
    ] == "Conflict"
    assert (await gql(client, CANCEL, id="999"))["data"]["cancelCount"]["__typename"] == "NotFound"


async def test_a_refused_finish_applies_no_line_even_though_graphql_answers_it(
    client, world, engine
):
    """GraphQL answers a refusal as a typed result and commits the rest of its work: the
    adjustment of a line finished before the refused one must not survive."""
    bolt, nut, main = world["bolt"], world["nut"], world["main"]
    assert bolt < nut, "the bolt's line is adjusted first"
    await move(client, bolt, main, "receipt", 10)
    await move(client, nut, main, "receipt", 10)
    count_id = (await client.post(COUNTS, json={"warehouse_id": main})).json()["id"]
    await record(client, count_id, bolt, 11)
    await record(client, count_id, nut, 2)
    await move(client, nut, main, "shipment", 5)
    before = await collect_pages(client, f"{API}/stock/movements")

    short = (await gql(client, FINISH, id=str(count_id)))["data"]["finishCount"]
    assert short["__typename"] == "InsufficientStock"
    assert await collect_pages(client, f"{API}/stock/movements") == before
    assert (await level(client, bolt, main), await level(client, nut, main)) == (10, 5)

    await record(client, count_id, nut, 5)
    finished = (await gql(client, FINISH, id=str(count_id)))["data"]["finishCount"]
    assert finished["__typename"] == "FinishedCount"
    assert (await level(client, bolt, main), await level(client, nut, main)) == (11, 5)
    await assert_ledger_consistent(engine)
