"""The live feeds' follower, in process: a caller whose check fails ends both ways of following.

The served feeds' token-expiry tests take the same path over the wire; here
the re-check is due at once, and the user was deactivated or demoted since
the connection opened.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from inventory import security
from inventory.auth import signin
from inventory.auth.signin import Caller
from inventory.errors import DomainError, Forbidden, Unauthenticated
from inventory.models import Role
from inventory.stock.follower import Recheck, Resumed, Wanted, follow_ledger, live_changes
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
        following = live_changes(changes, Wanted(), caller, _recheck(app))
        with pytest.raises(refusal) as refused:
            await asyncio.wait_for(anext(following), 5)
    assert refused.value.detail == message


@pytest.mark.parametrize(("name", "change", "again", "refusal", "message"), CHANGES, ids=IDS)
async def test_following_the_ledger_ends_with_the_refusal(
    app, accounts, name, change, again, refusal, message
):
    caller = await _changed_clerk(app, accounts[Role.clerk], change, again)
    following = follow_ledger(
        app.state.db,
        app.state.change_feed,
        asyncio.Event(),
        Wanted(),
        None,
        caller,
        _recheck(app),
        idle_seconds=15,
    )
    assert isinstance(await anext(following), Resumed)
    with pytest.raises(DomainError) as refused:
        await asyncio.wait_for(anext(following), 5)
    assert (type(refused.value), refused.value.detail) == (refusal, message)
