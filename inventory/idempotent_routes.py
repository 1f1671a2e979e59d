"""REST writes answered once per Idempotency-Key: the header, its checks, the stored answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated

from fastapi import Header, Request, status
from fastapi.responses import Response
from pydantic import BaseModel

from inventory import idempotency
from inventory.errors import ValidationFailed, field_error
from inventory.problems import PROBLEM_MEDIA_TYPE, kept_refusal
from inventory.unit_of_work import UnitOfWork

IdempotencyKeyHeader = Annotated[
    idempotency.Key | None,
    Header(
        alias=idempotency.HEADER,
        description="Repeat a request safely: the same key within 24 h returns the first "
        "answer and records nothing new.",
    ),
]


async def answer_once(
    request: Request,
    uow: UnitOfWork,
    user_id: int,
    key: str | None,
    operation: str,
    payload: BaseModel,
    run: Callable[[], Awaitable[BaseModel]],
    *,
    status_code: int = status.HTTP_201_CREATED,
) -> Response:
    """Answer a write through ``idempotency.answer_once``; the header is checked here."""
    if len(request.headers.getlist(idempotency.HEADER)) > 1:
        raise ValidationFailed(
            "Send one Idempotency-Key.",
            [field_error(("header", idempotency.HEADER), "sent more than once", "duplicate")],
        )

    async def work() -> idempotency.StoredResponse:
        body = (await run()).model_dump_json()
        return idempotency.StoredResponse(status_code, body)

    request_hash = idempotency.fingerprint(operation, payload)
    answer = await idempotency.answer_once(
        uow.session, user_id, key, request_hash, work, partial(kept_refusal, request)
    )
    return Response(
        answer.body,
        status_code=answer.status,
        media_type=PROBLEM_MEDIA_TYPE if answer.status >= 400 else "application/json",
        headers={"Idempotent-Replayed": "true"} if answer.replayed else None,
    )
