"""``POST /auth/token``: the OAuth2 password flow that Swagger UI's Authorize button uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from inventory import security
from inventory.auth.throttle import LoginThrottle
from inventory.deps import SettingsDep, UnitOfWorkDep
from inventory.errors import Unauthenticated, problem_responses
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
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=320, description="The account's email")],
    password: Annotated[str, Form(max_length=256)],
) -> TokenResponse:
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    account = username.strip().lower()
    await throttle.check(address, account)
    user = await users.authenticate(uow.session, account, password)
    if user is None:
        await throttle.record_failure(address, account)
        raise Unauthenticated("Incorrect email or password.")
    token = security.create_access_token(user.id, user.role, settings)
    return TokenResponse(access_token=token.token, expires_in=token.expires_in)
