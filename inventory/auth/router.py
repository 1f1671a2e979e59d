"""``POST /auth/token``: the OAuth2 password flow that Swagger UI's Authorize button uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from inventory import security
from inventory.auth.throttle import LoginThrottle
from inventory.deps import DatabaseDep, ReadUnitOfWorkDep, SettingsDep
from inventory.errors import Unauthenticated
from inventory.kit.schemas import NO_NUL
from inventory.problems import problem_responses
from inventory.users import service as users
from inventory.users.schemas import TokenResponse

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Exchange email and password for an access token",
    responses=problem_responses(401, 422, 429),
)
async def issue_token(
    request: Request,
    uow: ReadUnitOfWorkDep,
    database: DatabaseDep,
    settings: SettingsDep,
    username: Annotated[
        str, Form(max_length=320, pattern=NO_NUL, description="The account's email")
    ],
    password: Annotated[str, Form(max_length=256, pattern=NO_NUL)],
) -> TokenResponse:
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    account = username.strip().lower()
    await throttle.begin(address, account)
    user = await users.authenticate(uow.session, account, password)
    if user is None:
        raise Unauthenticated("Incorrect email or password.")
    await throttle.succeeded(address, account)
    if security.needs_rehash(user.hashed_password):
        async with database.unit_of_work(write=True) as write:
            await users.upgrade_password_hash(write.session, user.id, password)
    token = security.create_access_token(user.id, user.role, settings)
    return TokenResponse(access_token=token.token, expires_in=token.expires_in)
