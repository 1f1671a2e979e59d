"""The caller of a long-lived connection: checked when it opens, then every minute and at expiry.

A WebSocket or an event stream outlives the request that opened it, so a
user deactivated or demoted, or a token that expired, must not keep it open.
The rule, shared by the GraphQL subscription, the stock WebSocket and the
stock event stream: check again after ``RECHECK_SECONDS``, or just after the
token expires if that comes first, and end the connection when the check fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query, WebSocket, WebSocketException, status

from inventory import security
from inventory.config import Settings
from inventory.db import Database
from inventory.deps import DatabaseDep, SettingsDep
from inventory.errors import Forbidden, Unauthenticated
from inventory.models import Role, User
from inventory.users import service as users

RECHECK_SECONDS = 60.0


def seconds_until_recheck(expires_at: datetime | None, now: datetime | None = None) -> float:
    """A minute, or one second past the token's expiry if sooner; 0 without a valid token."""
    if expires_at is None:
        return 0.0
    to_expiry = (expires_at - (now or datetime.now(UTC))).total_seconds() + 1
    return max(0.0, min(RECHECK_SECONDS, to_expiry))


@dataclass(frozen=True)
class Caller:
    """Who opened the connection, and until when their token is good."""

    token: str
    user_id: int
    role: Role
    expires_at: datetime

    def seconds_until_recheck(self) -> float:
        return seconds_until_recheck(self.expires_at)


def token_caller(user: User, token: str, settings: Settings) -> Caller:
    """The caller of a request whose ``user`` the REST dependencies already checked."""
    try:
        claims = security.decode_access_token(token, settings)
    except security.InvalidToken:
        raise Unauthenticated("The token is invalid or has expired.") from None
    return Caller(token, user.id, user.role, claims.expires_at)


async def check_caller(
    database: Database, settings: Settings, token: str | None, role: Role
) -> Caller:
    """The caller behind ``token`` when it is valid and its active user has ``role``.

    Raises Unauthenticated (no token, a bad or expired one, a user gone or
    deactivated) or Forbidden (the role is too low). Reads the user in a
    short unit of work of its own: a connection holds no session.
    """
    if not token:
        raise Unauthenticated("Sign in first: this endpoint needs a token.")
    try:
        claims = security.decode_access_token(token, settings)
    except security.InvalidToken:
        raise Unauthenticated("The token is invalid or has expired.") from None
    async with database.unit_of_work(write=False) as uow:
        user = await users.get_active_user(uow.session, claims.user_id)
    if user is None:
        raise Unauthenticated("The token is invalid or has expired.")
    if not user.role.allows(role):
        raise Forbidden(f"This needs the {role.value} role or higher.")
    return token_caller(user, token, settings)


class SocketRoleRequirement:
    """A WebSocket dependency: the caller behind ``?token=``, who must have at least ``role``.

    Browsers cannot set headers on a WebSocket, hence the query parameter. A
    refused socket is accepted and then closed with 1008 (policy violation)
    and the reason, because a socket closed before it is accepted reaches a
    browser as a bare failed handshake, with no code or reason it can read.
    Its ``role`` attribute is how the authorization test reads the rule.
    """

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(
        self,
        websocket: WebSocket,
        database: DatabaseDep,
        settings: SettingsDep,
        token: Annotated[str | None, Query(description="An access token")] = None,
    ) -> Caller:
        try:
            return await check_caller(database, settings, token, self.role)
        except (Unauthenticated, Forbidden) as exc:
            await websocket.accept()
            raise WebSocketException(status.WS_1008_POLICY_VIOLATION, exc.detail) from None
