"""``POST /auth/token``: the OAuth2 password flow that Swagger UI's Authorize button uses.

A successful sign-in also sets the device cookie (``inventory.auth.devices``)
that spares this client the account's and the address's failure limits next time.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Cookie, Form, Request, Response

from inventory import security
from inventory.auth import devices
from inventory.auth.throttle import LoginThrottle
from inventory.deps import DatabaseDep, ReadUnitOfWorkDep, SettingsDep
from inventory.errors import Overloaded, Unauthenticated
from inventory.kit.schemas import NO_NUL
from inventory.problems import problem_responses
from inventory.users import service as users
from inventory.users.schemas import TokenResponse

router = APIRouter(prefix="/auth", tags=["auth"])
AUTH_COOKIE_PATH = "/api/v1/auth"
"""Where the auth cookies are sent: the sign-in routes only, never with API calls."""


def set_device_cookie(response: Response, value: str) -> None:
    response.set_cookie(
        devices.COOKIE_NAME,
        value,
        max_age=devices.LIFETIME_SECONDS,
        path=AUTH_COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Exchange email and password for an access token",
    responses=problem_responses(401, 422, 429, 503),
)
async def issue_token(
    request: Request,
    response: Response,
    uow: ReadUnitOfWorkDep,
    database: DatabaseDep,
    settings: SettingsDep,
    username: Annotated[
        str, Form(max_length=320, pattern=NO_NUL, description="The account's email")
    ],
    password: Annotated[str, Form(max_length=256, pattern=NO_NUL)],
    device_cookie: Annotated[
        str | None,
        Cookie(
            alias=devices.COOKIE_NAME,
            description="Set by an earlier sign-in; spares this client others' failures",
        ),
    ] = None,
) -> TokenResponse:
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    account = username.strip().lower()
    secret = settings.secret_key.get_secret_value()
    device = devices.trusted_nonce(device_cookie, account, secret)
    async with throttle.attempt(address, account, device):
        found = await users.get_by_email(uow.session, account)
        await uow.close()  # the connection goes back before the hash, which may queue
        user = await users.check_password(found, password)
        if user is None:
            raise Unauthenticated("Incorrect email or password.")
    set_device_cookie(response, devices.issue(account, secret))
    if security.needs_rehash(user.hashed_password):
        with suppress(Overloaded):  # the upgrade can wait for a quieter sign-in
            async with database.unit_of_work(write=True) as write:
                await users.upgrade_password_hash(write.session, user.id, password)
    token = security.create_access_token(user.id, user.role, settings)
    return TokenResponse(access_token=token.token, expires_in=token.expires_in)
