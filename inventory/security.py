"""Password hashing (argon2) and access tokens (JWT, HS256)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import LRUCache

from inventory.config import Settings
from inventory.kit.schemas import MAX_ID
from inventory.models import Role

ALGORITHM = "HS256"
_jwt = jwt.PyJWT(options={"enforce_minimum_key_length": True})

password_hasher = PasswordHasher()
"""argon2id with the library's current recommended parameters."""

_dummy_hashes: dict[int, str] = {}


def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both failures cost the same.

    Made by the current hasher, so its cost parameters match real hashes.
    """
    key = id(password_hasher)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = password_hasher.hash("not-a-real-password-" + uuid.uuid4().hex)
    return _dummy_hashes[key]


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow and CPU-bound: keep it off the event loop.
    return await to_thread.run_sync(password_hasher.hash, password)


async def verify_password(hashed: str | None, password: str) -> bool:
    """True when ``password`` matches ``hashed``; with ``hashed=None`` a dummy is checked."""
    target = hashed if hashed is not None else _dummy_hash()
    try:
        return await to_thread.run_sync(password_hasher.verify, target, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(hashed: str) -> bool:
    return password_hasher.check_needs_rehash(hashed)


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    issued_at: datetime
    expires_at: datetime


_verified: LRUCache[tuple[str, str], TokenClaims] = LRUCache(maxsize=10_000)


def verified_claims(token: str, settings: Settings) -> TokenClaims:
    """``decode_access_token``, remembered until the token expires.

    A token is a pure function of the secret: once verified it stays valid
    until ``exp``, so repeat requests skip the signature check.
    """
    key = (token, settings.secret_key.get_secret_value())
    claims = _verified.get(key)
    if claims is None or claims.expires_at.timestamp() <= time.time():
        claims = decode_access_token(token, settings)
        _verified[key] = claims
    return claims


class InvalidToken(Exception):
    """The token cannot be trusted; the reason is for logs, never for the client."""


def create_access_token(user_id: int, role: Role, settings: Settings) -> AccessToken:
    # NumericDate may be fractional (RFC 7519 section 2): ``iat`` to the microsecond, so a
    # token issued just before a password change in the same second is told apart from one
    # issued just after it (see ``User.tokens_valid_after``).
    now = round(time.time(), 6)
    lifetime = timedelta(minutes=settings.access_token_minutes)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "role": role.value,
        "iat": now,
        "exp": now + lifetime.total_seconds(),
        "jti": uuid.uuid4().hex,
    }
    token = _jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=ALGORITHM)
    return AccessToken(token=token, expires_in=int(lifetime.total_seconds()))


def decode_access_token(token: str, settings: Settings) -> TokenClaims:
    """Verify signature, algorithm and expiry; ``exp``, ``iat`` and ``sub`` must be present."""
    try:
        claims = _jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub"]},
            leeway=5,
        )
        user_id = int(claims["sub"])
        if not 1 <= user_id <= MAX_ID:
            raise ValueError("subject out of range")
        return TokenClaims(
            user_id=user_id,
            issued_at=datetime.fromtimestamp(claims["iat"], UTC),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError, OSError) as exc:
        # OverflowError, OSError: an iat or exp beyond what a datetime holds.
        raise InvalidToken(f"{type(exc).__name__}: {exc}") from exc
