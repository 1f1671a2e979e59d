"""Password hashing (argon2, a bounded number at once) and access tokens (JWT, HS256)."""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import anyio
import jwt
from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import LRUCache

from inventory.config import Settings
from inventory.errors import Overloaded
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


HASH_WAIT_SECONDS = 2.0
"""How long a password hash waits for a free slot before the caller gets ``Overloaded``."""
T = TypeVar("T")


class HashGate:
    """At most ``limit`` password hashes at once; the rest wait up to ``wait`` seconds.

    argon2 takes 64 MiB and a core for each hash, so without a bound a burst
    of sign-ins (anyone may send them) runs as many at once as there are
    threads and the process's memory grows with the burst. One gate per
    served app (``lifespan`` makes it, ``HashGateScope`` hands it to each
    request through ``current_gate``): per process in production, and apps
    sharing a test process do not share a bound or an event loop.
    """

    def __init__(self, limit: int, wait: float = HASH_WAIT_SECONDS) -> None:
        self.limit = limit
        self.wait = wait
        self._slots = anyio.CapacityLimiter(limit)

    @property
    def running(self) -> int:
        return int(self._slots.borrowed_tokens)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a worker thread once a slot is free; ``Overloaded`` if none
        frees up within ``wait`` seconds."""
        with anyio.move_on_after(self.wait) as waiting:
            await self._slots.acquire()
        if waiting.cancelled_caught:
            raise Overloaded("Too many password checks at once; retry in a moment.")
        try:
            # Not abandoned on cancellation: the slot is held until the hash really ends.
            return await to_thread.run_sync(work, *args)
        finally:
            self._slots.release()


current_gate: ContextVar[HashGate | None] = ContextVar("current_gate", default=None)
"""The serving app's gate, bound for each request by ``HashGateScope`` (and by the lifespan)."""

_fallback_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HashGate] = (
    weakref.WeakKeyDictionary()
)


def _gate() -> HashGate:
    """The app's gate; outside a served app (the command line, scripts) one per event loop,
    of the default size."""
    gate = current_gate.get()
    if gate is None:
        loop = asyncio.get_running_loop()
        gate = _fallback_gates.get(loop)
        if gate is None:
            limit = Settings.model_fields["max_concurrent_hashes"].default
            gate = _fallback_gates[loop] = HashGate(limit)
    return gate


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow and CPU-bound: off the event loop, a bounded number at once.
    return await _gate().run(password_hasher.hash, password)


async def verify_password(hashed: str | None, password: str) -> bool:
    """True when ``password`` matches ``hashed``; with ``hashed=None`` a dummy is checked."""
    try:
        return await _gate().run(_verify, hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _verify(hashed: str | None, password: str) -> bool:
    # The dummy is made here, in the gate's thread, the first time it is needed.
    return password_hasher.verify(hashed if hashed is not None else _dummy_hash(), password)


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
