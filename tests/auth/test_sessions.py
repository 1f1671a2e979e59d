"""Sessions that end: refresh tokens (rotation, reuse, logout, the cookie), and access tokens
refused once their user's password, role or status changed, on this process and on others.

The refresh cookie is ``Secure``, so the clients that carry it talk to the app as
``https://testserver`` (httpx keeps a Secure cookie only for https).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.config import Settings
from inventory.jobs import maintenance
from inventory.models import RefreshToken, Role, User
from tests.conftest import Account
from tests.helpers import API, assert_problem, login
from tests.processes import server_environment, serving

TOKEN = f"{API}/auth/token"
REFRESH = f"{API}/auth/refresh"
LOGOUT = f"{API}/auth/logout"
ME = f"{API}/users/me"
COOKIE = "inventory_refresh"
NEW_PASSWORD = "A-New-Passphrase-42"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_in(http: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await login(http, account.email, account.password)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post(REFRESH, data={"refresh_token": token})


@pytest.fixture
async def browser(app: FastAPI, accounts: dict[Role, Account]) -> AsyncIterator[httpx.AsyncClient]:
    """A client over https that keeps cookies, as a browser does."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


def refresh_cookie_header(response: httpx.Response) -> str:
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")]
    return header


def cookie_attributes(header: str) -> dict[str, str]:
    _, *attributes = header.split("; ")
    pairs = (attribute.partition("=") for attribute in attributes)
    return {name.lower(): value for name, _, value in pairs}


# --- the pair and the cookie -----------------------------------------------------------------


async def test_sign_in_hands_out_a_refresh_token_as_body_and_cookie(
    browser, accounts, settings, engine: AsyncEngine
):
    response = await login(browser, accounts[Role.clerk].email, accounts[Role.clerk].password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    refresh_token = body["refresh_token"]
    assert len(refresh_token) >= 43
    assert refresh_token.count(".") == 0  # opaque, not a JWT

    header = refresh_cookie_header(response)
    assert header.startswith(f"{COOKIE}={refresh_token};")
    attributes = cookie_attributes(header)
    assert {"httponly", "secure"} <= attributes.keys()
    assert attributes["samesite"].lower() == "strict"
    assert attributes["path"] == "/api/v1/auth"
    assert int(attributes["max-age"]) == settings.refresh_token_days * 86400

    # Stored only as its hash.
    async with engine.connect() as connection:
        stored = (await connection.execute(select(RefreshToken.token_hash))).scalars().all()
    assert stored == [hashlib.sha256(refresh_token.encode()).hexdigest()]


async def test_refresh_rotates_the_pair(anonymous, accounts):
    clerk = accounts[Role.clerk]
    first = await sign_in(anonymous, clerk)
    response = await refresh(anonymous, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["token_type"] == "bearer"
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert COOKIE in response.cookies
    me = await anonymous.get(ME, headers=bearer(second["access_token"]))
    assert me.json()["id"] == clerk.id
    # The new refresh token is good for the next turn, and so on.
    third = await refresh(anonymous, second["refresh_token"])
    assert third.status_code == 200, third.text
    assert (
        await anonymous.get(ME, headers=bearer(third.json()["access_token"]))
    ).status_code == 200


async def test_a_browser_refreshes_with_the_cookie_alone(browser, accounts):
    await sign_in(browser, accounts[Role.viewer])
    first_cookie = browser.cookies[COOKIE]
    response = await browser.post(REFRESH)
    assert response.status_code == 200, response.text
    assert browser.cookies[COOKIE] == response.json()["refresh_token"] != first_cookie
    again = await browser.post(REFRESH)
    assert again.status_code == 200, again.text


async def test_reusing_a_refresh_token_ends_its_session(anonymous, accounts):
    viewer = accounts[Role.viewer]
    stolen = (await sign_in(anonymous, viewer))["refresh_token"]
    other_session = (await sign_in(anonymous, viewer))["refresh_token"]
    rotated = (await refresh(anonymous, stolen)).json()["refresh_token"]

    reused = await refresh(anonymous, stolen)
    body = assert_problem(reused, 401)
    assert "refresh token" in body["detail"]
    assert "access_token" not in reused.text
    # The token it was rotated into is refused too: one of the two holders is a thief.
    assert_problem(await refresh(anonymous, rotated), 401)
    assert_problem(await refresh(anonymous, stolen), 401)
    # The user's other sessions carry on.
    assert (await refresh(anonymous, other_session)).status_code == 200


async def test_concurrent_refreshes_with_one_token_let_one_through(anonymous, accounts):
    token = (await sign_in(anonymous, accounts[Role.clerk]))["refresh_token"]
    responses = await asyncio.gather(*(refresh(anonymous, token) for _ in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401, 401, 401, 401, 401], [r.text for r in responses]
    # The losers presented a used token: the winner's new one is revoked with the family.
    (winner,) = (r for r in responses if r.status_code == 200)
    assert_problem(await refresh(anonymous, winner.json()["refresh_token"]), 401)


async def test_logout_ends_the_session_and_clears_the_cookie(browser, accounts):
    viewer = accounts[Role.viewer]
    refresh_token = (await sign_in(browser, viewer))["refresh_token"]
    response = await browser.post(LOGOUT)  # the cookie alone, no access token
    assert response.status_code == 204
    assert response.content == b""
    attributes = cookie_attributes(refresh_cookie_header(response))
    assert attributes["max-age"] == "0"
    assert attributes["path"] == "/api/v1/auth"
    assert COOKIE not in browser.cookies
    assert_problem(await refresh(browser, refresh_token), 401)
    assert_problem(await browser.post(REFRESH), 422)  # no cookie left to send


async def test_logout_with_the_form_field_ends_that_session_only(anonymous, accounts):
    viewer = accounts[Role.viewer]
    ended = (await sign_in(anonymous, viewer))["refresh_token"]
    kept = (await sign_in(anonymous, viewer))["refresh_token"]
    rotated = (await refresh(anonymous, ended)).json()["refresh_token"]
    assert (await anonymous.post(LOGOUT, data={"refresh_token": ended})).status_code == 204
    # The whole family: the token it was rotated into too.
    assert_problem(await refresh(anonymous, rotated), 401)
    assert (await refresh(anonymous, kept)).status_code == 200


@pytest.mark.parametrize("form", [{}, {"refresh_token": "never-handed-out"}, {"refresh_token": ""}])
async def test_logout_without_a_live_token_is_still_204(anonymous, accounts, form):
    response = await anonymous.post(LOGOUT, data=form)
    assert response.status_code == 204
    assert cookie_attributes(refresh_cookie_header(response))["max-age"] == "0"


async def test_logging_out_twice_is_204_both_times(anonymous, accounts):
    token = (await sign_in(anonymous, accounts[Role.clerk]))["refresh_token"]
    for _ in range(2):
        assert (await anonymous.post(LOGOUT, data={"refresh_token": token})).status_code == 204


async def test_an_expired_refresh_token_is_refused(anonymous, accounts, engine: AsyncEngine):
    token = (await sign_in(anonymous, accounts[Role.clerk]))["refresh_token"]
    digest = hashlib.sha256(token.encode()).hexdigest()
    async with engine.begin() as connection:
        await connection.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == digest)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert_problem(await refresh(anonymous, token), 401)


async def test_expired_refresh_tokens_are_purged_hourly(
    app: FastAPI, anonymous, accounts, settings, engine: AsyncEngine
):
    expired = (await sign_in(anonymous, accounts[Role.clerk]))["refresh_token"]
    live = (await sign_in(anonymous, accounts[Role.clerk]))["refresh_token"]
    async with engine.begin() as connection:
        await connection.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == hashlib.sha256(expired.encode()).hexdigest())
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    purged = await maintenance.purge_expired(app.state.db, settings)
    assert purged.refresh_tokens == 1
    assert_problem(await refresh(anonymous, expired), 401)
    assert (await refresh(anonymous, live)).status_code == 200


@pytest.mark.parametrize(
    ("request_args", "status"),
    [
        ({}, 422),
        ({"data": {"refresh_token": ""}}, 422),
        ({"data": {"refresh_token": "x" * 257}}, 422),
        ({"data": {"refresh_token": "abc\x00def"}}, 422),
        ({"json": {"refresh_token": "abc"}}, 422),  # a form field, not JSON
        ({"cookies": {COOKIE: "y" * 300}}, 422),
        ({"data": {"refresh_token": "not-a-token-we-handed-out"}}, 401),
        ({"data": {"refresh_token": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"}}, 401),
    ],
)
async def test_bad_refresh_input_is_a_problem(anonymous, accounts, request_args, status):
    if "cookies" in request_args:
        anonymous.cookies.set(COOKIE, request_args.pop("cookies")[COOKIE])
    response = await anonymous.post(REFRESH, **request_args)
    body = assert_problem(response, status)
    if status == 422 and "errors" in body:
        assert body["errors"][0]["loc"][0] in ("body", "cookie")


@pytest.mark.parametrize("form", [{"refresh_token": "x" * 257}, {"refresh_token": "a\x00b"}])
async def test_bad_logout_input_is_422(anonymous, accounts, form):
    assert_problem(await anonymous.post(LOGOUT, data=form), 422)


async def test_refresh_and_logout_need_no_access_token(anonymous, accounts):
    token = (await sign_in(anonymous, accounts[Role.viewer]))["refresh_token"]
    stale = {"Authorization": "Bearer not-a-token"}
    refreshed = await anonymous.post(REFRESH, data={"refresh_token": token}, headers=stale)
    assert refreshed.status_code == 200
    logout = await anonymous.post(
        LOGOUT, data={"refresh_token": refreshed.json()["refresh_token"]}, headers=stale
    )
    assert logout.status_code == 204


def test_openapi_documents_the_session_routes(app: FastAPI):
    paths = app.openapi()["paths"]
    for path, ok in (("/api/v1/auth/refresh", "200"), ("/api/v1/auth/logout", "204")):
        operation = paths[path]["post"]
        assert "security" not in operation
        assert "422" in operation["responses"]
        assert ok in operation["responses"]
    assert {"200", "401", "422"} <= paths["/api/v1/auth/refresh"]["post"]["responses"].keys()
    assert "Set-Cookie" in paths["/api/v1/auth/refresh"]["post"]["responses"]["200"]["headers"]
    assert "Set-Cookie" in paths["/api/v1/auth/token"]["post"]["responses"]["200"]["headers"]
    token_schema = app.openapi()["components"]["schemas"]["TokenResponse"]
    assert "refresh_token" in token_schema["required"]
    assert token_schema["examples"][0]["refresh_token"]


# --- a change to the user ends every session, at once on this process ------------------------

CHANGES = {
    "password": {"password": NEW_PASSWORD},
    "role": {"role": "manager"},
    "deactivation": {"is_active": False},
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_a_change_to_the_user_ends_every_session(client, anonymous, accounts, change):
    viewer = accounts[Role.viewer]
    pairs = [await sign_in(anonymous, viewer) for _ in range(2)]
    for pair in pairs:
        assert (await anonymous.get(ME, headers=bearer(pair["access_token"]))).status_code == 200

    patched = await client.patch(f"{API}/users/{viewer.id}", json=CHANGES[change])
    assert patched.status_code == 200, patched.text

    for pair in pairs:
        refused = await anonymous.get(ME, headers=bearer(pair["access_token"]))
        assert_problem(refused, 401)
        assert_problem(await refresh(anonymous, pair["refresh_token"]), 401)
    assert_problem(await anonymous.get(ME, headers=viewer.headers), 401)

    password = NEW_PASSWORD if change == "password" else viewer.password
    after = await login(anonymous, viewer.email, password)
    if change == "deactivation":
        assert_problem(after, 401)
        return
    assert after.status_code == 200, after.text
    me = await anonymous.get(ME, headers=bearer(after.json()["access_token"]))
    assert me.status_code == 200
    assert me.json()["role"] == ("manager" if change == "role" else "viewer")
    assert (await refresh(anonymous, after.json()["refresh_token"])).status_code == 200


async def test_changing_only_the_name_keeps_the_sessions(client, anonymous, accounts):
    viewer = accounts[Role.viewer]
    pair = await sign_in(anonymous, viewer)
    patched = await client.patch(f"{API}/users/{viewer.id}", json={"full_name": "Vic Viewer"})
    assert patched.status_code == 200
    assert (await anonymous.get(ME, headers=bearer(pair["access_token"]))).status_code == 200
    assert (await refresh(anonymous, pair["refresh_token"])).status_code == 200


async def test_access_tokens_carry_iat_to_the_microsecond(anonymous, accounts, settings):
    pair = await sign_in(anonymous, accounts[Role.viewer])
    claims = jwt.decode(
        pair["access_token"], settings.secret_key.get_secret_value(), algorithms=["HS256"]
    )
    assert isinstance(claims["iat"], float)
    assert claims["exp"] - claims["iat"] == settings.access_token_minutes * 60


async def test_tokens_from_the_same_second_are_told_apart_by_the_change(
    client, anonymous, accounts, settings, engine: AsyncEngine
):
    """A token issued earlier in the second of the change is refused; one issued later in
    that same second is accepted."""
    viewer = accounts[Role.viewer]
    patched = await client.patch(f"{API}/users/{viewer.id}", json={"password": NEW_PASSWORD})
    assert patched.status_code == 200
    async with engine.connect() as connection:
        changed_at = await connection.scalar(
            select(User.tokens_valid_after).where(User.id == viewer.id)
        )
    assert changed_at is not None
    second = changed_at.replace(microsecond=0)
    before = second + (changed_at - second) / 2
    after = changed_at + (second + timedelta(seconds=1) - changed_at) / 2
    assert second < before < changed_at < after < second + timedelta(seconds=1)

    def token(issued: datetime) -> str:
        claims = {
            "sub": str(viewer.id),
            "iat": issued.timestamp(),
            "exp": (issued + timedelta(minutes=5)).timestamp(),
        }
        return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm="HS256")

    assert_problem(await anonymous.get(ME, headers=bearer(token(before))), 401)
    assert (await anonymous.get(ME, headers=bearer(token(after)))).status_code == 200
    # Whole seconds, as other issuers write them: the change's own second is refused.
    assert_problem(await anonymous.get(ME, headers=bearer(token(second))), 401)


@pytest.mark.parametrize(
    "times", [{"iat": -1e20}, {"iat": float("nan")}, {"exp": 1e300}, {"iat": "yesterday"}]
)
async def test_a_signed_token_with_impossible_times_is_401(anonymous, accounts, settings, times):
    now = time.time()
    claims = {"sub": str(accounts[Role.viewer].id), "iat": now, "exp": now + 60} | times
    token = jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm="HS256")
    assert_problem(await anonymous.get(ME, headers=bearer(token)), 401)


# --- ... and within a second on every other process ------------------------------------------

WITHIN_SECONDS = 1.0


@pytest.fixture(scope="module")
def pair(settings: Settings) -> Iterator[tuple[str, str]]:
    """Two real ``inventory serve`` processes, A and B, on the tests' PostgreSQL and Redis."""
    env = server_environment(settings)
    with serving("--no-migrate", **env) as a, serving("--no-migrate", **env) as b:
        yield a.url, b.url


async def wait_for_redis(http: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 10
    while (ready := (await http.get("/ready")).json())["checks"].get("redis") != "ok":
        assert time.monotonic() < deadline, ready
        await asyncio.sleep(0.1)


@pytest.mark.backend("postgresql")
@pytest.mark.parametrize("change", list(CHANGES))
async def test_a_change_through_a_refuses_old_tokens_on_b_within_a_second(pair, accounts, change):
    a, b = pair
    viewer, admin = accounts[Role.viewer], accounts[Role.admin]
    async with (
        httpx.AsyncClient(base_url=a) as via_a,
        httpx.AsyncClient(base_url=b) as via_b,
    ):
        for http in (via_a, via_b):
            await wait_for_redis(http)
        issued = await sign_in(via_a, viewer)
        old = bearer(issued["access_token"])
        # B has signed the user in, so it remembers them: only the change's news can stop it.
        for _ in range(3):
            assert (await via_b.get(ME, headers=old)).status_code == 200

        patched = await via_a.patch(
            f"{API}/users/{viewer.id}", json=CHANGES[change], headers=admin.headers
        )
        assert patched.status_code == 200, patched.text
        changed = time.monotonic()
        while (answer := await via_b.get(ME, headers=old)).status_code == 200:
            assert time.monotonic() - changed < WITHIN_SECONDS, "B still accepts the old token"
            await asyncio.sleep(0.02)
        assert time.monotonic() - changed < WITHIN_SECONDS
        assert answer.status_code == 401, answer.text
        # Refused for good, on both, and the refresh token with it.
        for http in (via_b, via_a, via_b):
            assert (await http.get(ME, headers=old)).status_code == 401
        refused = await via_b.post(REFRESH, data={"refresh_token": issued["refresh_token"]})
        assert refused.status_code == 401

        if change != "deactivation":
            password = NEW_PASSWORD if change == "password" else viewer.password
            again = await login(via_b, viewer.email, password)
            assert again.status_code == 200, again.text
            fresh = bearer(again.json()["access_token"])
            for http in (via_a, via_b):
                assert (await http.get(ME, headers=fresh)).status_code == 200


@pytest.mark.backend("postgresql")
async def test_one_refresh_token_sent_to_both_processes_at_once_works_once(pair, accounts):
    a, b = pair
    async with (
        httpx.AsyncClient(base_url=a) as via_a,
        httpx.AsyncClient(base_url=b) as via_b,
    ):
        for _ in range(5):
            token = (await sign_in(via_a, accounts[Role.clerk]))["refresh_token"]
            responses = await asyncio.gather(
                *(refresh(http, token) for http in (via_a, via_b, via_a, via_b))
            )
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200, 401, 401, 401], [r.text for r in responses]
