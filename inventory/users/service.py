"""Business rules for users: unique emails, hashed passwords, and always one active admin.

A password change, a role change or a deactivation ends the user's sessions
(``sessions.revoke_all``) in the same transaction.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inventory import events, security
from inventory.errors import Conflict
from inventory.kit.pagination import SortOrder, paginate
from inventory.kit.persistence import get_or_404, save
from inventory.models import Role, User
from inventory.users import sessions
from inventory.users.schemas import UserCreate, UserUpdate

logger = logging.getLogger(__name__)

NOUN = "user"
ORDER = SortOrder("email", User.email, User.id, "str")


async def get_user(session: AsyncSession, user_id: int) -> User:
    return await get_or_404(session, User, user_id, NOUN)


async def get_active_user(session: AsyncSession, user_id: int) -> User | None:
    """The user a token names, or None when it no longer exists or was deactivated."""
    user = await session.get(User, user_id)
    return user if user is not None and user.is_active else None


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email.strip().lower()))


async def list_users(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[User], str | None]:
    return await paginate(session, select(User), ORDER, limit=limit, cursor=cursor)


async def create_user(session: AsyncSession, data: UserCreate) -> User:
    user = User(
        email=data.email,
        hashed_password=await security.hash_password(data.password.get_secret_value()),
        role=data.role,
        full_name=data.full_name,
        is_active=True,
    )
    await save(session, user, duplicate=f"a user with email {data.email!r} already exists")
    logger.info("user %s created with role %s", user.id, user.role.value)
    return user


async def update_user(session: AsyncSession, user_id: int, data: UserUpdate) -> User:
    changes = data.model_dump(exclude_unset=True, exclude={"password"})
    active_admins: list[int] = []
    if "role" in changes or "is_active" in changes:
        active_admins = await _lock_active_admins(session)
    user = await get_or_404(session, User, user_id, NOUN, for_update=True)
    loses_admin = user.id in active_admins and (
        changes.get("role", Role.admin) is not Role.admin or changes.get("is_active") is False
    )
    if loses_admin and len(active_admins) == 1:
        raise Conflict("the last active admin cannot be demoted or deactivated")
    ends_sessions = (
        data.password is not None
        or changes.get("role", user.role) is not user.role
        or (user.is_active and changes.get("is_active") is False)
    )
    for field, value in changes.items():
        setattr(user, field, value)
    if data.password is not None:
        user.hashed_password = await security.hash_password(data.password.get_secret_value())
    if ends_sessions:
        await sessions.revoke_all(session, user)
    await save(session, user, duplicate="conflicting user")
    events.record(session, events.UserChanged(user.id))
    logger.info("user %s updated: %s", user.id, ", ".join(sorted(data.model_fields_set)))
    return user


async def _lock_active_admins(session: AsyncSession) -> list[int]:
    """Lock every active admin row, in id order, before any user row is touched.

    Two admins demoting each other then take turns instead of deadlocking, and
    the second sees the first's change. (SQLite writers are serialised anyway.)
    """
    rows = await session.scalars(
        select(User.id)
        .where(User.role == Role.admin, User.is_active.is_(True))
        .order_by(User.id)
        .with_for_update()
    )
    return list(rows.all())


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The active user with these credentials, or None.

    An unknown email is checked against a dummy hash, so it costs the same time
    as a wrong password and does not reveal which emails exist.
    """
    return await check_password(await get_by_email(session, email), password)


async def check_password(user: User | None, password: str) -> User | None:
    """``user`` (looked up by email) when it is active and ``password`` is its password.

    Needs no database: a caller may hand its connection back before the hash,
    which can wait for a free slot (``security.HashGate``).
    """
    valid = await security.verify_password(user.hashed_password if user else None, password)
    if user is None or not valid or not user.is_active:
        return None
    return user


async def upgrade_password_hash(session: AsyncSession, user_id: int, password: str) -> None:
    """Re-hash with the current argon2 parameters, after a successful sign-in."""
    user = await get_or_404(session, User, user_id, NOUN, for_update=True)
    if security.needs_rehash(user.hashed_password):
        user.hashed_password = await security.hash_password(password)


async def ensure_admin(session: AsyncSession, email: str, password: str) -> User | None:
    """Create an admin with these credentials when no admin exists yet; return it if created."""
    if await session.scalar(select(User.id).where(User.role == Role.admin).limit(1)):
        return None
    if await get_by_email(session, email) is not None:
        logger.warning("no admin exists, but %s is already a user; not creating one", email)
        return None
    data = UserCreate.model_validate({"email": email, "password": password, "role": Role.admin})
    return await create_user(session, data)
