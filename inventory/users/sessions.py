"""Sessions: the pair a sign-in hands out, its rotation, and the ways it ends.

A sign-in starts a session: an access token (a JWT, see ``inventory.security``)
and a refresh token, opaque and random, stored only as its SHA-256. Each
refresh token works once: ``refresh`` marks it used with one conditional
UPDATE (``WHERE used_at IS NULL``), so of two requests racing with the same
token exactly one wins, on SQLite and PostgreSQL alike, and hands out the next
pair in the same family. A token presented after it was used means two
holders, one of them a thief: the whole family is revoked, so neither the
stolen copy nor the token it was rotated into works again.

A password change, a role change or a deactivation (``users.service``) calls
``revoke_all`` in its own transaction and moves the user's
``tokens_valid_after``, which sign-in checks against each access token's
``iat``. Issuing and refreshing lock the user's row first, as that change
does, so a pair is either handed out before the change (and revoked with the
rest) or sees it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from inventory import security
from inventory.config import Settings
from inventory.db import Database
from inventory.errors import Unauthenticated, ValidationFailed, field_error
from inventory.models import RefreshToken, User
from inventory.models.columns import utcnow

logger = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 256
"""Longer than any token handed out (43 characters); a longer one is refused unread."""
WRONG_CREDENTIALS = "Incorrect email or password."
# Messages, not secrets:
NO_REFRESH_TOKEN = "No refresh token: send the inventory_refresh cookie or a refresh_token field."  # noqa: S105
BAD_REFRESH_TOKEN = "The refresh token is invalid, expired or revoked: sign in again."  # noqa: S105


@dataclass(frozen=True)
class TokenPair:
    """What a sign-in or a refresh hands out."""

    access: security.AccessToken
    refresh_token: str
    refresh_expires_in: int
    """Seconds until the refresh token expires."""


def token_hash(token: str) -> str:
    """How a refresh token is stored and looked up.

    A token has 256 random bits, so a plain SHA-256 cannot be reversed or
    guessed: a slow, salted hash would only cost time on every refresh.
    """
    return hashlib.sha256(token.encode()).hexdigest()


async def start(database: Database, user: User, settings: Settings) -> TokenPair:
    """The first pair of a new session, for ``user`` just signed in with their password.

    ``user`` was read before the password was checked: if the password, the role
    or the status changed since, the sign-in is refused after all (try again).
    """
    async with database.unit_of_work(write=True, queued=True) as uow:
        current = await _lock_user(uow.session, user.id)
        # Every password, role or status change moves tokens_valid_after (a re-hash of the
        # same password after sign-in does not).
        if (
            current is None
            or not current.is_active
            or current.tokens_valid_after != user.tokens_valid_after
        ):
            raise Unauthenticated(WRONG_CREDENTIALS)
        return await _issue(uow.session, current, uuid.uuid4().hex, settings)


async def refresh(database: Database, presented: str | None, settings: Settings) -> TokenPair:
    """The next pair for a refresh token, which is then used up; Unauthenticated otherwise
    (ValidationFailed when there is none).

    A token already used revokes its whole family (committed, then refused).
    """
    if not presented:
        # A request without the credential is incomplete, as a sign-in without a password.
        missing = field_error(("refresh_token",), "Field required", "missing")
        raise ValidationFailed(NO_REFRESH_TOKEN, [missing])
    digest = token_hash(presented)
    async with database.unit_of_work(write=True, queued=True) as uow:
        session = uow.session
        found = (
            await session.execute(
                select(RefreshToken.user_id).where(RefreshToken.token_hash == digest)
            )
        ).first()
        if found is None:
            raise Unauthenticated(BAD_REFRESH_TOKEN)
        # The user's row first, in the same order as a change to the user takes its locks.
        user = await _lock_user(session, found.user_id)
        now = utcnow()
        claimed = await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == digest,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        token = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == digest))
        if token is None:  # purged as expired meanwhile
            raise Unauthenticated(BAD_REFRESH_TOKEN)
        if cast("CursorResult[Any]", claimed).rowcount == 1:
            if user is not None and user.is_active:
                return await _issue(session, user, token.family, settings)
        elif token.used_at is not None and token.revoked_at is None:
            await _revoke_family(session, token.family, now)
            logger.warning(
                "refresh token used twice: session family %s of user %s revoked",
                token.family,
                token.user_id,
            )
    # Outside the unit of work, so that a revocation is committed before the refusal.
    raise Unauthenticated(BAD_REFRESH_TOKEN)


async def end(database: Database, presented: str | None) -> None:
    """Sign out: revoke the session (the family) of a refresh token. Unknown tokens are ignored."""
    if not presented:
        return
    async with database.unit_of_work(write=True, queued=True) as uow:
        found = (
            await uow.session.execute(
                select(RefreshToken.user_id, RefreshToken.family).where(
                    RefreshToken.token_hash == token_hash(presented)
                )
            )
        ).first()
        if found is not None:
            # The user's row first: every writer of a user's tokens locks in that order.
            await _lock_user(uow.session, found.user_id)
            await _revoke_family(uow.session, found.family, utcnow())


async def revoke_all(session: AsyncSession, user: User) -> None:
    """End every session of ``user``, in the caller's transaction: their refresh tokens are
    revoked and every access token issued until now is refused. ``user``'s row must be
    locked, so no pair is handed out meanwhile."""
    now = utcnow()
    user.tokens_valid_after = now
    await session.execute(
        update(RefreshToken)
        .where(*_live(now), RefreshToken.user_id == user.id)
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def purge_expired(session: AsyncSession) -> int:
    """Delete refresh tokens past their expiry (refused anyway); how many."""
    result = await session.execute(
        delete(RefreshToken)
        .where(RefreshToken.expires_at < utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(cast("CursorResult[Any]", result).rowcount)


async def _lock_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id, with_for_update=True)


async def _issue(session: AsyncSession, user: User, family: str, settings: Settings) -> TokenPair:
    lifetime = timedelta(days=settings.refresh_token_days)
    token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            user_id=user.id,
            token_hash=token_hash(token),
            family=family,
            expires_at=utcnow() + lifetime,
        )
    )
    await session.flush()
    access = security.create_access_token(user.id, user.role, settings)
    return TokenPair(access, token, int(lifetime.total_seconds()))


def _live(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Tokens a revocation must reach: expired ones are refused anyway (and purged; leaving
    them alone keeps a revocation and the purge off each other's rows)."""
    return (RefreshToken.revoked_at.is_(None), RefreshToken.expires_at > now)


async def _revoke_family(session: AsyncSession, family: str, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(*_live(now), RefreshToken.family == family)
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
