"""Signing a caller in: an access token to the active user behind it, or the precise refusal.

Every front (REST, the stock WebSocket and event stream, GraphQL over HTTP
and its subscriptions) only extracts the token its own way and asks here, so
the refusals and their words are the same on every transport:

- no token, a bad or expired one, one whose user is gone or deactivated, or one
  issued at or before the user's ``tokens_valid_after`` (a password change, a
  role change or a deactivation since): ``Unauthenticated``;
- a valid token whose user's role is below the one asked for: ``Forbidden``.

A long-lived connection (a WebSocket, an event stream, a subscription)
outlives the check that opened it, so a user deactivated or demoted, or a
token that expired, must not keep it open. The rule: check its ``Caller``
again after ``RECHECK_SECONDS``, or just after the token expires if that
comes first (``Caller.seconds_until_recheck``), or at once when its
``UserBell`` rings (a change to the user, heard from this process or,
through Redis, from another), with ``recheck``, and end the connection when
the check fails.

Verified tokens and active users are remembered in the process (see
``RememberedUsers``); a change to a user (role, deactivation, password) is a
committed event that drops them at once here and, through Redis, in every
other process; the next request reads the user again, with the moment before
which their tokens are refused, so ending sessions costs no read per request.
No session is held: a user not remembered is read in a short
unit of work of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from inventory import security
from inventory.config import Settings
from inventory.db import Database
from inventory.errors import Forbidden, Unauthenticated
from inventory.models import Role, User
from inventory.users import service as users

logger = logging.getLogger(__name__)

NO_TOKEN = "Sign in first: this endpoint needs a bearer token."  # noqa: S105 - a message
BAD_TOKEN = "The token is invalid or has expired."  # noqa: S105 - a message
RECHECK_SECONDS = 60.0


def token_from_authorization(value: str) -> str | None:
    """The token of an ``Authorization`` value ``Bearer …`` (the scheme in any case), or None."""
    scheme, _, token = value.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def role_too_low(role: Role) -> str:
    """The refusal's words when ``role`` is needed."""
    return f"This needs the {role.value} role or higher."


class UserBell:
    """Rings when the user behind a long-lived connection changes (role, status, password),
    so its caller is checked again at once instead of at the next scheduled check."""

    __slots__ = ("_wake", "rung")

    def __init__(self) -> None:
        self.rung = False
        self._wake: Callable[[], None] | None = None

    def ring(self) -> None:
        self.rung = True
        if self._wake is not None:
            self._wake()

    def answered(self) -> None:
        """The caller is being checked again: the ring is heard."""
        self.rung = False

    @contextmanager
    def waking(self, wake: Callable[[], None]) -> Iterator[None]:
        """Call ``wake`` when the bell rings during the block (at once if it already rang)."""
        self._wake = wake
        try:
            if self.rung:
                wake()
            yield
        finally:
            self._wake = None


class RememberedUsers(Protocol):
    """The process's memory of active users by id, dropped whenever a user changes."""

    def watch_user(self, user_id: int) -> AbstractContextManager[UserBell]:
        """A bell that rings, while the block lasts, whenever this user changes."""

    @property
    def user_generation(self) -> int:
        """Moves on whenever a user is forgotten: a read begun before must not be remembered."""

    def cached_user(self, user_id: int) -> User | None: ...

    def remember_user(self, user_id: int, user: User, seen_generation: int) -> None: ...


async def _sign_in(
    token: str | None, settings: Settings, database: Database, remembered: RememberedUsers
) -> tuple[User, security.TokenClaims]:
    if not token:
        raise Unauthenticated(NO_TOKEN)
    try:
        claims = security.verified_claims(token, settings)
    except security.InvalidToken as exc:
        logger.info("rejected token: %s", exc)
        raise Unauthenticated(BAD_TOKEN) from None
    user = remembered.cached_user(claims.user_id)
    if user is None:
        generation = remembered.user_generation
        async with database.unit_of_work(write=False) as uow:
            user = await users.get_active_user(uow.session, claims.user_id)
        if user is None:
            raise Unauthenticated(BAD_TOKEN)
        remembered.remember_user(claims.user_id, user, generation)
    if user.tokens_valid_after is not None and claims.issued_at <= user.tokens_valid_after:
        raise Unauthenticated(BAD_TOKEN)
    return user, claims


async def authenticate(
    token: str | None, settings: Settings, database: Database, remembered: RememberedUsers
) -> User:
    """The active user behind ``token``, or Unauthenticated (no token, a bad one, no such user)."""
    user, _ = await _sign_in(token, settings, database, remembered)
    return user


def check_role(user: User, role: Role) -> User:
    """``user`` when their role is ``role`` or higher; Forbidden otherwise."""
    if not user.role.allows(role):
        raise Forbidden(role_too_low(role))
    return user


def seconds_until_recheck(expires_at: datetime, now: datetime | None = None) -> float:
    """A minute, or one second past the token's expiry if that is sooner."""
    to_expiry = (expires_at - (now or datetime.now(UTC))).total_seconds() + 1
    return max(0.0, min(RECHECK_SECONDS, to_expiry))


@dataclass(frozen=True)
class Caller:
    """Who holds a long-lived connection, the role it needs, and until when the token is good."""

    token: str
    user_id: int
    role: Role
    """The role the connection needs (not necessarily the user's own)."""
    expires_at: datetime

    def seconds_until_recheck(self) -> float:
        return seconds_until_recheck(self.expires_at)


async def connection_caller(
    token: str | None,
    role: Role,
    settings: Settings,
    database: Database,
    remembered: RememberedUsers,
) -> Caller:
    """The caller opening a connection that needs ``role``; Unauthenticated or Forbidden."""
    user, claims = await _sign_in(token, settings, database, remembered)
    check_role(user, role)
    assert token is not None  # _sign_in refuses a missing one
    return Caller(token, user.id, role, claims.expires_at)


async def recheck(
    caller: Caller, settings: Settings, database: Database, remembered: RememberedUsers
) -> Caller:
    """The caller checked again, as when the connection opened; Unauthenticated or Forbidden."""
    return await connection_caller(caller.token, caller.role, settings, database, remembered)
