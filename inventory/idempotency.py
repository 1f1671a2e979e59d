"""Idempotency keys: a repeated write returns the first answer and changes nothing.

Any write front uses ``answer_once``: the front extracts the key, fingerprints
the request and hands over the work. The key is claimed inside the write's own
transaction. A concurrent request with the same key waits on the unique index
until the first commits, then finds its stored answer. So no key ever causes
two writes.

The first answer is the answer, a refusal by the business rules included: the
work runs in a savepoint, and when a rule refuses it (a 409 for insufficient
stock, say) the work is undone but the claim stays, holding that refusal, so a
replay after stock arrived still gets the 409. Only failures that say nothing
about the request (the service overloaded or unavailable, a rate limit, a
crash) roll the claim back with everything else and leave the key free; the
front says which refusals it keeps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, StringConstraints
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inventory import events
from inventory.errors import Conflict, DomainError, ValidationFailed, field_error
from inventory.kit.persistence import insert_for
from inventory.models import IdempotencyKey
from inventory.models.columns import utcnow

RETENTION = timedelta(hours=24)
HEADER = "Idempotency-Key"

Key = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")]
"""An idempotency key as every front takes it: 1 to 255 visible ASCII characters."""


@dataclass(frozen=True)
class StoredResponse:
    """A write's answer as the front sent it (its status in the front's terms, a JSON body)."""

    status: int
    body: str
    replayed: bool = False
    """True when this is the stored answer to an earlier request with the same key."""


def fingerprint(operation: str, payload: BaseModel) -> str:
    """What makes two requests "the same": the operation and the validated body."""
    return hashlib.sha256(f"{operation}\n{payload.model_dump_json()}".encode()).hexdigest()


Refusal = Callable[[DomainError], StoredResponse | None]
"""A front's answer to a domain error, when that answer is to be kept for the key; None
when the error must not use up the key (it is raised as usual)."""


async def answer_once(
    session: AsyncSession,
    user_id: int,
    key: str | None,
    request_hash: str,
    work: Callable[[], Awaitable[StoredResponse]],
    refusal: Refusal,
) -> StoredResponse:
    """Run ``work`` once per user and ``key``; a repeat gets the first answer, ``replayed``.

    ``request_hash`` (see ``fingerprint``) tells a repeat from a different request
    reusing the key, which is refused. When ``work`` raises a domain error that
    ``refusal`` answers, its writes are undone and that answer is kept and returned.
    Without a key the work simply runs.
    """
    if key is None:
        return await work()
    stored = await claim(session, user_id, key, request_hash)
    if stored is not None:
        return replace(stored, replayed=True)
    recorded = events.pending(session)
    try:
        async with session.begin_nested():
            answer = await work()
    except DomainError as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        events.forget_since(session, recorded)  # what the undone work announced
        answer = refused
    await remember(session, user_id, key, answer)
    return answer


async def claim(
    session: AsyncSession, user_id: int, key: str, request_hash: str
) -> StoredResponse | None:
    """Take ``key`` for this request (None), or return the answer stored for it.

    422 when the key was used for a different request.
    """
    # This user's expired keys go first, so the table stays bounded by recent use.
    expired = IdempotencyKey.created_at < utcnow() - RETENTION
    await session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id, expired))
    owned = (IdempotencyKey.user_id == user_id) & (IdempotencyKey.key == key)
    taken = await session.scalar(
        insert_for(session, IdempotencyKey)
        .values(user_id=user_id, key=key, request_hash=request_hash, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyKey.id)
    )
    if taken is not None:
        return None
    stored = (await session.execute(select(IdempotencyKey).where(owned))).scalar_one()
    if stored.request_hash != request_hash:
        raise ValidationFailed(
            f"{HEADER} {key!r} was already used for a different request.",
            [
                field_error(
                    ("header", HEADER),
                    "already used for a different request",
                    "idempotency_key_reused",
                )
            ],
        )
    if stored.response_status is None or stored.response_body is None:
        raise Conflict(f"the request with {HEADER} {key!r} is still being processed")
    return StoredResponse(stored.response_status, stored.response_body)


async def remember(session: AsyncSession, user_id: int, key: str, response: StoredResponse) -> None:
    """Store the answer to the request that claimed ``key`` (same transaction as its work)."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(response_status=response.status, response_body=response.body)
        .execution_options(synchronize_session=False)
    )


async def purge_expired(session: AsyncSession) -> int:
    """Delete every user's expired keys (``claim`` only clears its own user's); how many."""
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - RETENTION)
    )
    count: int = result.rowcount  # type: ignore[attr-defined]
    return count
