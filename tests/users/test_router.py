"""Users over REST: the caller's own account, admin user management and the last-admin rule."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from inventory.models import Role
from tests.helpers import API, assert_problem, collect_pages, error_locs, login

USERS = f"{API}/users"
READ_FIELDS = {"id", "email", "role", "is_active", "full_name", "created_at", "updated_at"}
NEW_PASSWORD = "Distinctive-Pass-42"
UNKNOWN_ID = 999_999
NON_ADMINS = [Role.viewer, Role.clerk, Role.manager]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_no_secrets(response: httpx.Response, *passwords: str) -> None:
    """No field named like a password or hash, and no plain password anywhere in the text."""

    def keys(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [k for k, v in value.items() for k in [k, *keys(v)]]
        if isinstance(value, list):
            return [k for item in value for k in keys(item)]
        return []

    for key in keys(response.json()):
        assert "password" not in key.lower(), response.text
        assert "hash" not in key.lower(), response.text
    for password in passwords:
        assert password not in response.text


async def token_for(http: httpx.AsyncClient, email: str, password: str) -> str:
    response = await login(http, email, password)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def create_user(
    http: httpx.AsyncClient,
    email: str,
    role: str = "viewer",
    password: str = NEW_PASSWORD,
    **fields: Any,
) -> dict[str, Any]:
    response = await http.post(
        USERS, json={"email": email, "password": password, "role": role, **fields}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def patch_user(http: httpx.AsyncClient, user_id: int, **fields: Any) -> httpx.Response:
    return await http.patch(f"{USERS}/{user_id}", json=fields)


async def all_emails(http: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await http.get(USERS, params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return [user["email"] for user in response.json()["items"]]


# --- GET /users/me ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
async def test_me_returns_own_account_for_every_role(anonymous, accounts, role):
    account = accounts[role]
    response = await anonymous.get(f"{USERS}/me", headers=account.headers)
    assert response.status_code == 200, response.text
    me = response.json()
    assert me.keys() >= READ_FIELDS
    assert me["id"] == account.id
    assert me["email"] == account.email
    assert me["role"] == role.value
    assert me["is_active"] is True
    assert me["full_name"] is None
    assert me["created_at"]
    assert me["updated_at"]
    assert_no_secrets(response, account.password)


async def test_me_without_token_is_401(anonymous):
    response = await anonymous.get(f"{USERS}/me")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_me_with_garbage_token_is_401(anonymous):
    response = await anonymous.get(f"{USERS}/me", headers=bearer("not-a-jwt"))
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


# --- login -----------------------------------------------------------------------------------


async def test_login_returns_a_bearer_token_that_works(anonymous, accounts):
    account = accounts[Role.clerk]
    response = await login(anonymous, account.email.upper(), account.password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int)
    assert body["expires_in"] > 0
    me = await anonymous.get(f"{USERS}/me", headers=bearer(body["access_token"]))
    assert me.json()["id"] == account.id


# --- POST /users -----------------------------------------------------------------------------


async def test_create_user_is_201_with_location_and_lower_case_email(client):
    response = await client.post(
        USERS,
        json={
            "email": "  New.Person@Example.COM ",
            "password": NEW_PASSWORD,
            "role": "clerk",
            "full_name": "New Person",
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"{USERS}/{created['id']}"
    assert created.keys() >= READ_FIELDS
    assert created["email"] == "new.person@example.com"
    assert created["role"] == "clerk"
    assert created["full_name"] == "New Person"
    assert created["is_active"] is True
    assert_no_secrets(response, NEW_PASSWORD)

    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert_no_secrets(fetched, NEW_PASSWORD)

    token = await token_for(client, "new.person@example.com", NEW_PASSWORD)
    me = await client.get(f"{USERS}/me", headers=bearer(token))
    assert me.json() == created


async def test_created_user_can_sign_in_with_mixed_case_email(anonymous, client):
    await create_user(client, "Mixed@Example.com")
    assert (await login(anonymous, "mixed@example.com", NEW_PASSWORD)).status_code == 200
    assert (await login(anonymous, "MIXED@EXAMPLE.COM", NEW_PASSWORD)).status_code == 200


@pytest.mark.parametrize("length", [8, 256])
async def test_passwords_at_the_length_limits_are_accepted_and_work(client, length):
    password = ("pw-" * 100)[:length]
    await create_user(client, f"len{length}@example.com", password=password)
    assert (await login(client, f"len{length}@example.com", password)).status_code == 200


async def test_password_is_used_exactly_as_given(client):
    """Spaces at either end of a password are part of it, as in any sign-in form."""
    password = "  padded password  "
    await create_user(client, "padded@example.com", password=password)
    response = await login(client, "padded@example.com", password)
    assert response.status_code == 200, response.text


async def test_duplicate_email_in_other_case_is_409_and_adds_nothing(client, accounts):
    before = await all_emails(client, accounts[Role.admin].headers)
    response = await client.post(
        USERS, json={"email": "VIEWER@Example.com", "password": NEW_PASSWORD, "role": "manager"}
    )
    body = assert_problem(response, 409)
    assert "viewer@example.com" in body["detail"]
    assert NEW_PASSWORD not in response.text
    assert await all_emails(client, accounts[Role.admin].headers) == before
    # The existing account is untouched: same role, same password.
    viewer = await client.get(f"{USERS}/{accounts[Role.viewer].id}")
    assert viewer.json()["role"] == "viewer"
    assert (await login(client, "viewer@example.com", NEW_PASSWORD)).status_code == 401
    account = accounts[Role.viewer]
    assert (await login(client, account.email, account.password)).status_code == 200


VALID = {"email": "valid@example.com", "password": NEW_PASSWORD, "role": "viewer"}
SHORT_PASSWORD = "Sh0rt!x"
LONG_PASSWORD = "Very-Long-Secret-" * 16  # 272 characters


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"password": SHORT_PASSWORD}, "password"),
        ({"password": LONG_PASSWORD}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"email": "no-domain@example"}, "email"),
        ({"role": "owner"}, "role"),
        ({"role": "Admin"}, "role"),
        ({"role": 3}, "role"),
        ({"is_admin": True}, "is_admin"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": "x" * 201}, "full_name"),
    ],
    ids=[
        "short-password",
        "long-password",
        "bad-email",
        "double-at",
        "no-tld",
        "unknown-role",
        "capitalised-role",
        "integer-role",
        "extra-field",
        "empty-name",
        "long-name",
    ],
)
async def test_invalid_create_bodies_are_422_with_exact_loc(client, accounts, changes, loc):
    body = {**VALID, **changes}
    response = await client.post(USERS, json=body)
    assert error_locs(response) == [["body", loc]]
    assert body["password"] not in response.text
    assert "valid@example.com" not in await all_emails(client, accounts[Role.admin].headers)


async def test_missing_fields_are_each_reported(client):
    response = await client.post(USERS, json={})
    assert sorted(error_locs(response)) == [
        ["body", "email"],
        ["body", "password"],
        ["body", "role"],
    ]

    response = await client.post(USERS, json={"email": "a@example.com", "role": "viewer"})
    assert error_locs(response) == [["body", "password"]]


# --- GET /users, GET /users/{id} -------------------------------------------------------------


async def test_list_is_every_user_sorted_by_email(client, accounts):
    for email in ["zoe@example.com", "bob@example.com", "kim@example.com"]:
        await create_user(client, email)
    response = await client.get(USERS)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    emails = [user["email"] for user in page["items"]]
    expected = sorted(
        [a.email for a in accounts.values()]
        + ["zoe@example.com", "bob@example.com", "kim@example.com"]
    )
    assert emails == expected
    for response_user in page["items"]:
        assert response_user.keys() >= READ_FIELDS
    assert_no_secrets(response, NEW_PASSWORD, *(a.password for a in accounts.values()))


async def test_list_paginates_with_limit_and_cursor(client, accounts):
    for letter in "defghijk":
        await create_user(client, f"{letter}{letter}@example.com")
    everyone = sorted(
        [a.email for a in accounts.values()] + [f"{c}{c}@example.com" for c in "defghijk"]
    )

    first = await client.get(USERS, params={"limit": 5})
    assert first.status_code == 200
    page = first.json()
    assert [u["email"] for u in page["items"]] == everyone[:5]
    assert page["next_cursor"]

    second = await client.get(USERS, params={"limit": 5, "cursor": page["next_cursor"]})
    assert [u["email"] for u in second.json()["items"]] == everyone[5:10]

    collected = await collect_pages(client, USERS, limit=3)
    assert [u["email"] for u in collected] == everyone
    assert len({u["id"] for u in collected}) == len(everyone)


@pytest.mark.parametrize(
    ("params", "loc"),
    [({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"cursor": "garbage!"}, "cursor")],
)
async def test_bad_list_parameters_are_422(client, params, loc):
    response = await client.get(USERS, params=params)
    assert error_locs(response) == [["query", loc]]


async def test_get_one_user(client, accounts):
    account = accounts[Role.manager]
    response = await client.get(f"{USERS}/{account.id}")
    assert response.status_code == 200, response.text
    user = response.json()
    assert user["id"] == account.id
    assert user["email"] == account.email
    assert user["role"] == "manager"
    assert_no_secrets(response, account.password)


async def test_get_unknown_user_is_404(client):
    assert_problem(await client.get(f"{USERS}/{UNKNOWN_ID}"), 404)


# --- PATCH /users/{id}: roles take effect on existing tokens ---------------------------------


async def test_promoted_viewer_signs_in_again_for_the_new_permissions(client, accounts):
    viewer = accounts[Role.viewer]
    refused = await client.post(
        f"{API}/categories", json={"name": "Before"}, headers=viewer.headers
    )
    assert_problem(refused, 403)

    response = await patch_user(client, viewer.id, role="manager")
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "manager"

    # A role change ends the user's sessions: the old token is refused.
    assert_problem(await client.get(f"{USERS}/me", headers=viewer.headers), 401)
    token = await token_for(client, viewer.email, viewer.password)
    allowed = await client.post(f"{API}/categories", json={"name": "After"}, headers=bearer(token))
    assert allowed.status_code == 201, allowed.text
    me = await client.get(f"{USERS}/me", headers=bearer(token))
    assert me.json()["role"] == "manager"


async def test_demoted_manager_loses_the_old_token_and_the_permissions(client, accounts):
    manager = accounts[Role.manager]
    before = await client.post(f"{API}/categories", json={"name": "Ok"}, headers=manager.headers)
    assert before.status_code == 201, before.text

    response = await patch_user(client, manager.id, role="viewer")
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "viewer"

    after = await client.post(f"{API}/categories", json={"name": "No"}, headers=manager.headers)
    assert_problem(after, 401)
    token = await token_for(client, manager.email, manager.password)
    after = await client.post(f"{API}/categories", json={"name": "No"}, headers=bearer(token))
    assert_problem(after, 403)
    # Reading is still allowed for a viewer.
    assert (await client.get(f"{API}/categories", headers=bearer(token))).status_code == 200


async def test_patch_changes_only_what_was_sent(client, accounts):
    clerk = accounts[Role.clerk]
    before = (await client.get(f"{USERS}/{clerk.id}")).json()
    response = await patch_user(client, clerk.id, full_name="Clara Clerk")
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["full_name"] == "Clara Clerk"
    assert {k: v for k, v in after.items() if k not in {"full_name", "updated_at"}} == {
        k: v for k, v in before.items() if k not in {"full_name", "updated_at"}
    }
    assert (await login(client, clerk.email, clerk.password)).status_code == 200


# --- PATCH /users/{id}: deactivation ---------------------------------------------------------


async def test_deactivated_user_is_locked_out_then_reactivated(client, accounts):
    clerk = accounts[Role.clerk]
    assert (await client.get(f"{USERS}/me", headers=clerk.headers)).status_code == 200

    response = await patch_user(client, clerk.id, is_active=False)
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False

    me = await client.get(f"{USERS}/me", headers=clerk.headers)
    assert_problem(me, 401)
    assert me.headers["www-authenticate"] == "Bearer"
    refused = await login(client, clerk.email, clerk.password)
    assert_problem(refused, 401)
    assert "access_token" not in refused.text
    # Still listed for admins, as inactive.
    listed = await client.get(f"{USERS}/{clerk.id}")
    assert listed.json()["is_active"] is False

    response = await patch_user(client, clerk.id, is_active=True)
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is True
    # The deactivation ended the old token's session for good: sign in again.
    assert_problem(await client.get(f"{USERS}/me", headers=clerk.headers), 401)
    token = await token_for(client, clerk.email, clerk.password)
    me = await client.get(f"{USERS}/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["is_active"] is True


# --- PATCH /users/{id}: password -------------------------------------------------------------


async def test_changed_password_replaces_the_old_one(client, accounts):
    viewer = accounts[Role.viewer]
    response = await patch_user(client, viewer.id, password=NEW_PASSWORD)
    assert response.status_code == 200, response.text
    assert_no_secrets(response, NEW_PASSWORD, viewer.password)

    assert_problem(await login(client, viewer.email, viewer.password), 401)
    token = await token_for(client, viewer.email, NEW_PASSWORD)
    me = await client.get(f"{USERS}/me", headers=bearer(token))
    assert me.json()["id"] == viewer.id


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"role": None}, "role"),
        ({"is_active": None}, "is_active"),
        ({"password": None}, "password"),
        ({"role": "owner"}, "role"),
        ({"is_active": "false"}, "is_active"),
        ({"password": SHORT_PASSWORD}, "password"),
        ({"email": "new@example.com"}, "email"),
        ({"id": 5}, "id"),
    ],
)
async def test_invalid_patch_bodies_are_422_and_change_nothing(client, accounts, body, loc):
    viewer = accounts[Role.viewer]
    before = (await client.get(f"{USERS}/{viewer.id}")).json()
    response = await patch_user(client, viewer.id, **body)
    assert error_locs(response) == [["body", loc]]
    assert SHORT_PASSWORD not in response.text
    assert (await client.get(f"{USERS}/{viewer.id}")).json() == before
    assert (await login(client, viewer.email, viewer.password)).status_code == 200


async def test_patch_unknown_user_is_404(client):
    assert_problem(await patch_user(client, UNKNOWN_ID, role="viewer"), 404)


# --- the last active admin -------------------------------------------------------------------


@pytest.mark.parametrize("change", [{"role": "manager"}, {"role": "viewer"}, {"is_active": False}])
async def test_only_admin_cannot_demote_or_deactivate_themselves(client, accounts, change):
    admin = accounts[Role.admin]
    before = (await client.get(f"{USERS}/me")).json()

    response = await patch_user(client, admin.id, **change)
    body = assert_problem(response, 409)
    assert "admin" in body["detail"]

    after = await client.get(f"{USERS}/me")
    assert after.status_code == 200
    assert after.json() == before
    assert after.json()["role"] == "admin"
    assert after.json()["is_active"] is True
    # Still an admin in deed, too.
    assert (await client.get(USERS)).status_code == 200


async def test_only_admin_may_send_unchanged_role_and_status(client, accounts):
    response = await patch_user(client, accounts[Role.admin].id, role="admin", is_active=True)
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "admin"


async def test_inactive_second_admin_does_not_count(client, accounts):
    other = await create_user(client, "other.admin@example.com", role="admin")
    assert (await patch_user(client, other["id"], is_active=False)).status_code == 200

    response = await patch_user(client, accounts[Role.admin].id, role="manager")
    assert_problem(response, 409)
    assert (await client.get(f"{USERS}/me")).json()["role"] == "admin"


async def test_with_a_second_admin_one_can_be_demoted(client, accounts):
    first = accounts[Role.admin]
    await create_user(client, "second.admin@example.com", role="admin")
    second_headers = bearer(await token_for(client, "second.admin@example.com", NEW_PASSWORD))

    response = await patch_user(client, first.id, role="manager")
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "manager"
    # The role change ended the first admin's sessions; signed in again, a manager.
    assert_problem(await client.get(USERS, headers=first.headers), 401)
    first_again = bearer(await token_for(client, first.email, first.password))
    assert_problem(await client.get(USERS, headers=first_again), 403)

    # The second is now the only admin, and the rule holds for them.
    me = (await client.get(f"{USERS}/me", headers=second_headers)).json()
    refused = await client.patch(
        f"{USERS}/{me['id']}", json={"role": "viewer"}, headers=second_headers
    )
    assert_problem(refused, 409)
    assert (await client.get(f"{USERS}/me", headers=second_headers)).json()["role"] == "admin"


async def test_deactivating_the_other_of_two_admins_leaves_the_last_one_protected(client, accounts):
    first = accounts[Role.admin]
    second = await create_user(client, "second.admin@example.com", role="admin")
    second_headers = bearer(await token_for(client, "second.admin@example.com", NEW_PASSWORD))

    response = await patch_user(client, second["id"], is_active=False)
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    assert_problem(await client.get(f"{USERS}/me", headers=second_headers), 401)

    for change in ({"role": "manager"}, {"is_active": False}):
        refused = await patch_user(client, first.id, **change)
        assert_problem(refused, 409)
    me = (await client.get(f"{USERS}/me")).json()
    assert me["role"] == "admin"
    assert me["is_active"] is True


async def test_a_second_admin_can_demote_the_first(client, accounts):
    first = accounts[Role.admin]
    await create_user(client, "second.admin@example.com", role="admin")
    second_headers = bearer(await token_for(client, "second.admin@example.com", NEW_PASSWORD))

    response = await client.patch(
        f"{USERS}/{first.id}", json={"role": "clerk"}, headers=second_headers
    )
    assert response.status_code == 200, response.text
    assert_problem(await client.get(f"{USERS}/me", headers=first.headers), 401)
    again = bearer(await token_for(client, first.email, first.password))
    assert (await client.get(f"{USERS}/me", headers=again)).json()["role"] == "clerk"


# --- who may manage users --------------------------------------------------------------------


def _admin_requests(accounts: dict[Role, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    target = accounts[Role.viewer].id
    return [
        ("GET", USERS, None),
        ("GET", f"{USERS}/{target}", None),
        ("POST", USERS, {"email": "sneaky@example.com", "password": NEW_PASSWORD, "role": "admin"}),
        ("PATCH", f"{USERS}/{target}", {"role": "admin"}),
    ]


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_non_admins_are_forbidden_to_manage_users(anonymous, accounts, role):
    headers = accounts[role].headers
    for method, url, body in _admin_requests(accounts):
        response = await anonymous.request(method, url, json=body, headers=headers)
        assert_problem(response, 403)
    # Nothing was changed by the refused writes.
    admin = accounts[Role.admin].headers
    assert "sneaky@example.com" not in await all_emails(anonymous, admin)
    viewer = await anonymous.get(f"{USERS}/{accounts[Role.viewer].id}", headers=admin)
    assert viewer.json()["role"] == "viewer"


async def test_non_admin_cannot_promote_themselves(anonymous, accounts):
    manager = accounts[Role.manager]
    response = await anonymous.patch(
        f"{USERS}/{manager.id}", json={"role": "admin"}, headers=manager.headers
    )
    assert_problem(response, 403)
    assert (await anonymous.get(f"{USERS}/me", headers=manager.headers)).json()["role"] == "manager"


async def test_anonymous_is_401_on_every_user_route(anonymous, accounts):
    for method, url, body in [*_admin_requests(accounts), ("GET", f"{USERS}/me", None)]:
        response = await anonymous.request(method, url, json=body)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    admin = accounts[Role.admin].headers
    assert "sneaky@example.com" not in await all_emails(anonymous, admin)


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(client, accounts):
    created = await client.post(
        f"{API}/users",
        json={"email": "second@example.com", "password": "second-password", "role": "admin"},
    )
    assert created.status_code == 201
    token = (await login(client, "second@example.com", "second-password")).json()["access_token"]
    admins = {
        accounts[Role.admin].id: accounts[Role.admin].headers,
        created.json()["id"]: {"Authorization": f"Bearer {token}"},
    }
    credentials = {
        accounts[Role.admin].id: (accounts[Role.admin].email, accounts[Role.admin].password),
        created.json()["id"]: ("second@example.com", "second-password"),
    }
    first, second = admins
    for _ in range(5):
        responses = await asyncio.gather(
            client.patch(f"{API}/users/{second}", json={"role": "manager"}, headers=admins[first]),
            client.patch(f"{API}/users/{first}", json={"role": "manager"}, headers=admins[second]),
        )
        statuses = sorted(r.status_code for r in responses)
        # The loser was either already demoted when it was authorised (its token
        # then refused, 401) or found itself the last admin (409); never a 500,
        # never both demoted.
        assert statuses in ([200, 401], [200, 409]), [r.text for r in responses]
        demoted = next(r for r in responses if r.status_code == 200).json()["id"]
        (survivor,) = (user_id for user_id in admins if user_id != demoted)
        listing = await client.get(f"{API}/users", headers=admins[survivor])
        remaining = [u["id"] for u in listing.json()["items"] if u["role"] == "admin"]
        assert remaining == [survivor]
        restore = await client.patch(
            f"{API}/users/{demoted}", json={"role": "admin"}, headers=admins[survivor]
        )
        assert restore.status_code == 200
        # Both role changes ended the demoted admin's sessions: sign in again.
        admins[demoted] = bearer(await token_for(client, *credentials[demoted]))
