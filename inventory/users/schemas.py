"""Request and response schemas for users. Passwords only ever travel inwards."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, SecretStr

from inventory.kit.schemas import Email, InputModel, Name, NotNull, OutputModel
from inventory.models import Role

Password = Annotated[SecretStr, Field(min_length=8, max_length=256)]
"""Long enough to mean something, short enough that hashing it cannot be abused."""
RoleName = Annotated[Role, Field(strict=False)]
"""Bodies arrive as parsed JSON, so a strict enum would refuse the string ``"viewer"``."""


class UserCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "clerk@example.com",
                    "password": "a-long-passphrase-42",
                    "role": "clerk",
                    "full_name": "Casey Clerk",
                }
            ]
        }
    )

    email: Email
    password: Password
    role: RoleName
    full_name: Name | None = None


class UserUpdate(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "manager"}]})

    role: Annotated[RoleName | None, NotNull] = None
    is_active: Annotated[bool | None, NotNull] = None
    password: Annotated[Password | None, NotNull] = None
    full_name: Name | None = None


class UserRead(OutputModel):
    id: int
    email: str
    full_name: str | None
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime


class TokenResponse(OutputModel):
    """RFC 6749 section 5.1: the access token, and the refresh token that gets the next pair."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3In0.c2ln",
                    "token_type": "bearer",
                    "expires_in": 1800,
                    "refresh_token": "q6Ttu1Vd3Jf0c8c3mBGWZbJbqzYt6mIuVQ4aNn1Wq3c",
                }
            ]
        }
    )

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str = Field(
        description="Works once, at POST /auth/refresh, for the next pair; also set as the "
        "inventory_refresh cookie"
    )
