"""Signing in: tokens, failures that reveal nothing, and the brute-force throttle."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import jwt
import pytest

from inventory import security
from inventory.main import create_app
from inventory.models import Role
from tests.helpers import API, assert_problem, login

TOKEN = f"{API}/auth/token"


async def test_login_returns_a_bearer_token_with_the_required_claims(anonymous, accounts, settings):
    account = accounts[Role.clerk]
    response = await login(anonymous, account.email, account.password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_minutes * 60
    claims = jwt.decode(
        body["access_token"], settings.secret_key.get_secret_value(), algorithms=["HS256"]
    )
    assert claims["sub"] == str(account.id)
    assert claims["role"] == "clerk"
    assert claims["exp"] - claims["iat"] == settings.access_token_minutes * 60
    assert len(claims["jti"]) == 32
    me = await anonymous.get(
        f"{API}/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["email"] == account.email


async def test_every_token_is_unique(anonymous, accounts):
    account = accounts[Role.viewer]
    first = (await login(anonymous, account.email, account.password)).json()
    second = (await login(anonymous, account.email, account.password)).json()
    assert first["access_token"] != second["access_token"]


async def test_email_is_case_insensitive(anonymous, accounts):
    response = await login(anonymous, "  Manager@Example.COM ", accounts[Role.manager].password)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("admin@example.com", "wrong-password"),
        ("nobody@example.com", "whatever-password"),
        ("admin@example.com", "ADMIN-PASSWORD"),
    ],
)
async def test_bad_credentials_are_401_and_say_nothing_more(anonymous, accounts, email, password):
    response = await login(anonymous, email, password)
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["detail"] == "Incorrect email or password."


async def test_deactivated_user_cannot_sign_in(client, anonymous, accounts):
    viewer = accounts[Role.viewer]
    await client.patch(f"{API}/users/{viewer.id}", json={"is_active": False})
    body = assert_problem(await login(anonymous, viewer.email, viewer.password), 401)
    assert body["detail"] == "Incorrect email or password."


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"username": "admin@example.com"},
        {"username": "admin@example.com", "password": ""},
        {"password": "x"},
        {"username": "x" * 400, "password": "y"},
    ],
)
async def test_incomplete_form_is_422(anonymous, form):
    assert_problem(await anonymous.post(TOKEN, data=form), 422)


async def test_json_body_is_not_a_form(anonymous, accounts):
    account = accounts[Role.admin]
    response = await anonymous.post(
        TOKEN, json={"username": account.email, "password": account.password}
    )
    assert_problem(response, 422)


async def test_unknown_email_and_wrong_password_both_verify_a_hash(
    anonymous, accounts, monkeypatch
):
    verified: list[str] = []
    hasher = security.password_hasher

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(hasher, name)

        def verify(self, hashed: str, password: str) -> bool:
            verified.append(hashed)
            return hasher.verify(hashed, password)

    monkeypatch.setattr(security, "password_hasher", Spy())
    assert (await login(anonymous, "nobody@example.com", "some-password")).status_code == 401
    assert (await login(anonymous, "admin@example.com", "wrong-password")).status_code == 401
    assert len(verified) == 2
    assert all(hashed.startswith("$argon2id$") for hashed in verified)


async def test_passwords_never_appear_in_responses_or_logs(client, anonymous, accounts, caplog):
    secret = "Sup3r-Secret-Passw0rd"
    caplog.set_level(logging.DEBUG)
    created = await client.post(
        f"{API}/users", json={"email": "new@example.com", "password": secret, "role": "viewer"}
    )
    assert created.status_code == 201, created.text
    responses = [
        created,
        await login(anonymous, "new@example.com", secret),
        await login(anonymous, "new@example.com", secret + "x"),
        await login(anonymous, "ghost@example.com", secret),
        await client.post(f"{API}/users", json={"email": "bad", "password": secret, "role": "x"}),
        await client.post(f"{API}/users", json={"email": "b@example.com", "password": 5}),
        await client.patch(f"{API}/users/{created.json()['id']}", json={"password": secret * 2}),
        await client.patch(f"{API}/users/{created.json()['id']}", json={"password": "short"}),
    ]
    assert [r.status_code for r in responses] == [201, 200, 401, 401, 422, 422, 200, 422]
    for response in responses:
        assert secret not in response.text
        assert "hashed_password" not in response.text
        assert "$argon2" not in response.text
    everything = "\n".join(record.getMessage() for record in caplog.records)
    assert secret not in everything
    # Drivers' DEBUG lines echo SQL parameters, hashes included; what runs at INFO may not.
    info = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "$argon2" not in info


def test_openapi_offers_the_password_flow_to_swagger_ui(settings):
    schemes = create_app(settings).openapi()["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"


# --- throttling: each test gets apps of its own, so no other test's attempts count ---


@pytest.fixture
def connect(connect: Callable[..., Any]) -> Callable[..., Any]:
    """Clients over plain HTTP, as a script: they keep no (Secure) device cookie, so every
    attempt counts as a stranger's."""
    return partial(connect, scheme="http")


async def test_eleventh_failed_attempt_is_429_with_retry_after(make_app, connect, accounts):
    http = await connect(make_app())
    admin = accounts[Role.admin]
    for _ in range(10):
        assert (await login(http, admin.email, "wrong-password")).status_code == 401
    refused = await login(http, admin.email, "wrong-password")
    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Even the right password waits: the account is locked for the window.
    assert (await login(http, admin.email, admin.password)).status_code == 429


async def test_failures_are_counted_per_account_across_addresses(make_app, connect, accounts):
    app = make_app()
    manager = accounts[Role.manager]
    for n in range(10):
        http = await connect(app, address=f"198.51.100.{n}")
        assert (await login(http, manager.email, "wrong-password")).status_code == 401
    fresh_address = await connect(app, address="198.51.100.200")
    assert (await login(fresh_address, manager.email, manager.password)).status_code == 429
    other_account = accounts[Role.viewer]
    ok = await login(fresh_address, other_account.email, other_account.password)
    assert ok.status_code == 200


async def test_failures_are_counted_per_address_across_accounts(make_app, connect, accounts):
    http = await connect(make_app())
    for n in range(10):
        assert (await login(http, f"guess{n}@example.com", "password1")).status_code == 401
    assert (await login(http, accounts[Role.admin].email, "whatever")).status_code == 429
    elsewhere = await connect(make_app(), address="192.0.2.1")
    admin = accounts[Role.admin]
    assert (await login(elsewhere, admin.email, admin.password)).status_code == 200


async def test_successful_logins_meet_only_a_generous_ceiling(make_app, connect, accounts):
    http = await connect(make_app())
    viewer = accounts[Role.viewer]
    statuses = [(await login(http, viewer.email, viewer.password)).status_code for _ in range(61)]
    assert statuses[:60] == [200] * 60
    assert statuses[60] == 429


@pytest.mark.backend("postgresql")
async def test_workers_sharing_redis_share_the_count(make_app, connect, accounts, settings):
    first, second = await connect(make_app()), await connect(make_app())
    admin = accounts[Role.admin]
    for n in range(10):
        worker = first if n % 2 else second
        assert (await login(worker, admin.email, "wrong-password")).status_code == 401
    assert (await login(first, admin.email, admin.password)).status_code == 429
    assert (await login(second, admin.email, admin.password)).status_code == 429


async def test_concurrent_guesses_cannot_slip_past_the_limit(make_app, connect, accounts):
    http = await connect(make_app())
    admin = accounts[Role.admin]
    responses = await asyncio.gather(*(login(http, admin.email, f"guess-{n}") for n in range(50)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == Counter({401: 10, 429: 40}), statuses


async def test_a_successful_sign_in_does_not_count_as_a_failure(make_app, connect, accounts):
    http = await connect(make_app())
    viewer = accounts[Role.viewer]
    for _ in range(9):
        assert (await login(http, viewer.email, "wrong-password")).status_code == 401
    for _ in range(5):
        assert (await login(http, viewer.email, viewer.password)).status_code == 200
    assert (await login(http, viewer.email, "wrong-password")).status_code == 401
    assert (await login(http, viewer.email, "wrong-password")).status_code == 429


async def test_nul_in_the_form_is_422(anonymous):
    response = await login(anonymous, "admin@example.com\x00", "whatever-password")
    assert_problem(response, 422)


async def test_unreachable_redis_falls_back_to_counting_in_memory(make_app, connect, accounts):
    http = await connect(make_app(redis_url="redis://127.0.0.1:1/0"))
    admin = accounts[Role.admin]
    assert (await login(http, admin.email, admin.password)).status_code == 200
    for _ in range(10):
        assert (await login(http, admin.email, "wrong-password")).status_code == 401
    refused = await login(http, admin.email, "wrong-password")
    assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
