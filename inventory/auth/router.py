"""``POST /auth/token``, the OAuth2 password flow that Swagger UI's Authorize button uses,
and the session's ``POST /auth/refresh`` and ``POST /auth/logout``.

The rules of sessions live in ``inventory.users.sessions``; these routes only
read the refresh token from the form or the cookie and set or clear the cookie.
A successful sign-in also sets the device cookie (``inventory.auth.devices``)
that spares this client the account's and the address's failure limits next time.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Form, Request, Response, status

from inventory import security
from inventory.auth import devices
from inventory.auth.throttle import LoginThrottle
from inventory.deps import TOKEN_URL, DatabaseDep, ReadUnitOfWorkDep, SettingsDep
from inventory.errors import Overloaded, Unauthenticated
from inventory.kit.schemas import NO_NUL
from inventory.problems import problem_responses
from inventory.users import service as users
from inventory.users import sessions
from inventory.users.schemas import TokenResponse

router = APIRouter(prefix="/auth", tags=["auth"])

REFRESH_COOKIE = "inventory_refresh"
COOKIE_PATH = TOKEN_URL.rsplit("/", 1)[0]
"""``/api/v1/auth``: the browser sends the cookie to these routes and nowhere else."""

_SETS_COOKIE = {
    "headers": {
        "Set-Cookie": {
            "description": f"The refresh token as `{REFRESH_COOKIE}` "
            f"(HttpOnly; Secure; SameSite=Strict; Path={COOKIE_PATH})",
            "schema": {"type": "string"},
        }
    }
}


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Exchange email and password for an access token and a refresh token",
    responses={200: _SETS_COOKIE, **problem_responses(401, 422, 429, 503)},
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
    response.set_cookie(
        devices.COOKIE_NAME,
        devices.issue(account, secret),
        max_age=devices.LIFETIME_SECONDS,
        **_cookie_scope(request),
    )
    if security.needs_rehash(user.hashed_password):
        with suppress(Overloaded):  # the upgrade can wait for a quieter sign-in
            async with database.unit_of_work(write=True) as write:
                await users.upgrade_password_hash(write.session, user.id, password)
    return _answer(request, response, await sessions.start(database, user, settings))


RefreshTokenField = Annotated[
    str | None,
    Form(
        max_length=sessions.MAX_TOKEN_LENGTH,
        pattern=NO_NUL,
        description=f"The refresh token, when not sent as the `{REFRESH_COOKIE}` cookie",
        examples=["q6Ttu1Vd3Jf0c8c3mBGWZbJbqzYt6mIuVQ4aNn1Wq3c"],
    ),
]
RefreshCookie = Annotated[
    str | None,
    Cookie(
        alias=REFRESH_COOKIE,
        max_length=sessions.MAX_TOKEN_LENGTH,
        pattern=NO_NUL,
        description="The refresh token, as set by /auth/token or /auth/refresh",
    ),
]


@router.post(
    "/refresh",
    response_model=TokenResponse,
    summary="Exchange a refresh token for a new pair (the refresh token works once)",
    description="Takes the refresh token from the `refresh_token` form field, else from the "
    f"`{REFRESH_COOKIE}` cookie. A refresh token presented a second time ends its whole "
    "session: every refresh token rotated from the same sign-in is refused from then on.",
    responses={200: _SETS_COOKIE, **problem_responses(401, 422)},
)
async def refresh_session(
    request: Request,
    response: Response,
    database: DatabaseDep,
    settings: SettingsDep,
    refresh_token: RefreshTokenField = None,
    cookie: RefreshCookie = None,
) -> TokenResponse:
    pair = await sessions.refresh(database, refresh_token or cookie, settings)
    return _answer(request, response, pair)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End the session of a refresh token (no access token needed)",
    description="Revokes the refresh token and every one rotated from the same sign-in, and "
    f"clears the `{REFRESH_COOKIE}` cookie. Answers 204 for an unknown, expired or missing "
    "token too: signing out twice is no error. Access tokens already handed out stay valid "
    "until they expire; forget them.",
    responses={
        204: {
            "description": "Signed out",
            "headers": {
                "Set-Cookie": {
                    "description": f"`{REFRESH_COOKIE}` cleared (Max-Age=0)",
                    "schema": {"type": "string"},
                }
            },
        },
        **problem_responses(422),
    },
)
async def logout(
    request: Request,
    database: DatabaseDep,
    refresh_token: RefreshTokenField = None,
    cookie: RefreshCookie = None,
) -> Response:
    await sessions.end(database, refresh_token or cookie)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(REFRESH_COOKIE, **_cookie_scope(request))
    return response


def _cookie_scope(request: Request) -> dict[str, Any]:
    return {
        "path": request.scope.get("root_path", "") + COOKIE_PATH,
        "secure": True,
        "httponly": True,
        "samesite": "strict",
    }


def _answer(request: Request, response: Response, pair: sessions.TokenPair) -> TokenResponse:
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=pair.refresh_expires_in,
        **_cookie_scope(request),
    )
    return TokenResponse(
        access_token=pair.access.token,
        expires_in=pair.access.expires_in,
        refresh_token=pair.refresh_token,
    )
