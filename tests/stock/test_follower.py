"""The live feeds' follower, in process: a caller whose check fails ends both ways of following.

The served feeds' token-expiry tests take the same path over the wire; here
the re-check is due at once, and the user was deactivated or demoted since
the connection opened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from inventory import security
from inventory.auth import signin
from inventory.auth.signin import Caller
from inventory.errors import DomainError, Forbidden, Unauthenticated
from inventory.models import Role
from inventory.stock.follower import (
    Followed,
    Recheck,
    Resumed,
    UserWatch,
    Wanted,
    follow_ledger,
    live_changes,
)
from inventory.users import service as users
from inventory.users.schemas import UserUpdate
from tests.conftest import Account

CHANGES = [
    ("deactivated", UserUpdate(is_active=False), False, Unauthenticated, signin.BAD_TOKEN),
    # A role change ends the sessions begun before it...
    ("demoted", UserUpdate(role=Role.viewer), False, Unauthenticated, signin.BAD_TOKEN),
    # ...and a session begun after it is held to the new role.
    (
        "demoted, signed in again",
        UserUpdate(role=Role.viewer),
        True,
        Forbidden,
        signin.role_too_low(Role.clerk),
    ),
]
IDS = [name for name, *_ in CHANGES]


async def _changed_clerk(
    app: FastAPI, account: Account, change: UserUpdate, sign_in_again: bool
) -> Caller:
    """A clerk's connection needing a clerk, opened before ``change`` (or with a token issued
    after it), due for a check now."""
    async with app.state.db.unit_of_work(write=True) as uow:
        user = await users.update_user(uow.session, account.id, change)
    token = account.token
    if sign_in_again:
        token = security.create_access_token(user.id, user.role, app.state.settings).token
    return Caller(token, account.id, Role.clerk, datetime.now(UTC) - timedelta(seconds=2))


def _watch(app: FastAPI, caller: Caller) -> UserWatch:
    watch: UserWatch = app.state.cache.watch_user(caller.user_id)
    return watch


def _ledger_follower(app: FastAPI, caller: Caller) -> AsyncGenerator[Followed, None]:
    """``follow_ledger`` from the ledger's end, for everything, as the app's event stream."""
    return follow_ledger(
        app.state.db,
        app.state.change_feed,
        asyncio.Event(),
        Wanted(),
        None,
        caller,
        _recheck(app),
        _watch(app, caller),
        idle_seconds=15,
    )


def _recheck(app: FastAPI) -> Recheck:
    state = app.state

    async def recheck(caller: Caller) -> Caller:
        return await signin.recheck(caller, state.settings, state.db, state.cache)

    return recheck


@pytest.mark.parametrize(("name", "change", "again", "refusal", "message"), CHANGES, ids=IDS)
async def test_following_the_feed_ends_with_the_refusal(
    app, accounts, name, change, again, refusal, message
):
    caller = await _changed_clerk(app, accounts[Role.clerk], change, again)
    async with app.state.change_feed.subscribe() as changes:
        following = live_changes(changes, Wanted(), caller, _recheck(app), _watch(app, caller))
        with pytest.raises(refusal) as refused:
            await asyncio.wait_for(anext(following), 5)
    assert refused.value.detail == message


@pytest.mark.parametrize(("name", "change", "again", "refusal", "message"), CHANGES, ids=IDS)
async def test_following_the_ledger_ends_with_the_refusal(
    app, accounts, name, change, again, refusal, message
):
    caller = await _changed_clerk(app, accounts[Role.clerk], change, again)
    following = _ledger_follower(app, caller)
    assert isinstance(await anext(following), Resumed)
    with pytest.raises(DomainError) as refused:
        await asyncio.wait_for(anext(following), 5)
    assert (type(refused.value), refused.value.detail) == (refusal, message)


# --- a change to the user ends a follower at once, not at its next scheduled check ---


def _watching_clerk(account: Account) -> Caller:
    """A clerk's connection (needing a viewer) whose next scheduled check is an hour away."""
    return Caller(account.token, account.id, Role.viewer, datetime.now(UTC) + timedelta(hours=1))


async def _change_password(app: FastAPI, account: Account) -> None:
    async with app.state.db.unit_of_work(write=True) as uow:
        await users.update_user(
            uow.session, account.id, UserUpdate(password=SecretStr("changed-pass-1"))
        )


async def test_a_password_change_ends_the_feed_at_once(app, accounts):
    account = accounts[Role.clerk]
    caller = _watching_clerk(account)
    async with app.state.change_feed.subscribe() as changes:
        following = live_changes(changes, Wanted(), caller, _recheck(app), _watch(app, caller))
        waiting = asyncio.ensure_future(anext(following))
        await asyncio.sleep(0.1)  # the follower waits for a change
        assert not waiting.done()
        await _change_password(app, account)
        with pytest.raises(Unauthenticated) as refused:
            await asyncio.wait_for(waiting, 5)
    assert refused.value.detail == signin.BAD_TOKEN


async def test_a_password_change_ends_the_ledger_follower_at_once(app, accounts):
    account = accounts[Role.clerk]
    caller = _watching_clerk(account)
    following = _ledger_follower(app, caller)
    assert isinstance(await anext(following), Resumed)
    waiting = asyncio.ensure_future(anext(following))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await _change_password(app, account)
    with pytest.raises(Unauthenticated):
        await asyncio.wait_for(waiting, 5)
    await following.aclose()


async def test_another_users_change_rings_no_bell(app, accounts):
    account, other = accounts[Role.clerk], accounts[Role.viewer]
    with app.state.cache.watch_user(account.id) as bell:
        await _change_password(app, other)
        assert not bell.rung
        await _change_password(app, account)
        assert bell.rung
