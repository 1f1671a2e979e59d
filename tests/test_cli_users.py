"""``inventory create-user``, run as an operator would run it: a real process."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from sqlalchemy import func, select

from inventory import security
from inventory.config import Settings
from inventory.db import create_engine
from inventory.models import Role, User
from tests.processes import run

PASSWORD = "Cli-Secret-Pass-77"


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


async def stored_user(url: str, email: str) -> dict[str, Any] | None:
    """The users row for ``email`` as stored, or None."""
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        User.id,
                        User.email,
                        User.hashed_password,
                        User.role,
                        User.full_name,
                        User.is_active,
                    ).where(User.email == email)
                )
            ).one_or_none()
            return None if row is None else dict(row._mapping)
    finally:
        await engine.dispose()


async def user_count(url: str) -> int:
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as connection:
            return (await connection.scalar(select(func.count()).select_from(User))) or 0
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def migrated(databases: Any) -> str:
    """One database per backend, migrated with ``inventory migrate``, shared by this module."""
    url: str = await databases.create()
    result = run("migrate", database_url=url)
    assert result.returncode == 0, result.stderr
    return url


def create_user(
    url: str, email: str, *options: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run("create-user", email, *options, database_url=url, stdin=stdin)


async def test_create_user_with_password_option(migrated):
    result = create_user(
        migrated,
        "Cli.User@Example.COM",
        "--role",
        "manager",
        "--password",
        PASSWORD,
        "--full-name",
        "Cli User",
    )
    assert result.returncode == 0, result.stderr
    assert "cli.user@example.com" in result.stdout
    assert "manager" in result.stdout
    assert PASSWORD not in output(result)

    user = await stored_user(migrated, "cli.user@example.com")
    assert user is not None
    assert user["role"] is Role.manager
    assert user["full_name"] == "Cli User"
    assert user["is_active"] is True
    assert f"id {user['id']}" in result.stdout
    assert user["hashed_password"] != PASSWORD
    assert await security.verify_password(user["hashed_password"], PASSWORD)
    assert not await security.verify_password(user["hashed_password"], "wrong-password")


async def test_password_is_prompted_for_and_not_echoed(migrated):
    result = create_user(
        migrated, "prompted@example.com", "--role", "clerk", stdin=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.returncode == 0, output(result)
    assert "Password" in output(result)
    assert PASSWORD not in output(result)

    user = await stored_user(migrated, "prompted@example.com")
    assert user is not None
    assert user["role"] is Role.clerk
    assert user["full_name"] is None
    assert await security.verify_password(user["hashed_password"], PASSWORD)


async def test_mismatched_prompted_passwords_create_nobody(migrated):
    before = await user_count(migrated)
    result = create_user(
        migrated, "mismatch@example.com", "--role", "viewer", stdin=f"{PASSWORD}\nsomething-else\n"
    )
    assert result.returncode != 0
    assert PASSWORD not in output(result)
    assert "something-else" not in output(result)
    assert await stored_user(migrated, "mismatch@example.com") is None
    assert await user_count(migrated) == before


async def test_duplicate_email_exits_1_with_a_clear_message(migrated):
    first = create_user(migrated, "dup@example.com", "--role", "viewer", "--password", PASSWORD)
    assert first.returncode == 0, first.stderr
    before = await user_count(migrated)

    again = create_user(
        migrated, "DUP@Example.com", "--role", "admin", "--password", "Other-Pass-123"
    )
    assert again.returncode == 1
    assert "dup@example.com" in again.stderr
    assert "already exists" in again.stderr
    assert "Traceback" not in output(again)
    assert "Other-Pass-123" not in output(again)
    assert await user_count(migrated) == before
    user = await stored_user(migrated, "dup@example.com")
    assert user is not None
    assert user["role"] is Role.viewer
    assert await security.verify_password(user["hashed_password"], PASSWORD)


@pytest.mark.parametrize("role", ["owner", "Admin", "superuser", ""])
async def test_invalid_role_exits_non_zero(migrated, role):
    before = await user_count(migrated)
    result = create_user(migrated, "badrole@example.com", "--role", role, "--password", PASSWORD)
    assert result.returncode != 0
    assert "--role" in result.stderr
    assert "Traceback" not in output(result)
    assert PASSWORD not in output(result)
    assert await user_count(migrated) == before


async def test_missing_role_is_a_usage_error(migrated):
    result = create_user(migrated, "norole@example.com", "--password", PASSWORD)
    assert result.returncode == 2
    assert "--role" in result.stderr
    assert await stored_user(migrated, "norole@example.com") is None


@pytest.mark.parametrize(
    ("options", "stdin"),
    [(("--password", "Sh0rt!x"), None), ((), "Sh0rt!x\nSh0rt!x\n")],
    ids=["option", "prompt"],
)
async def test_too_short_password_exits_2_without_printing_it(migrated, options, stdin):
    before = await user_count(migrated)
    result = create_user(migrated, "short@example.com", "--role", "viewer", *options, stdin=stdin)
    assert result.returncode == 2
    assert "password" in result.stderr.lower()
    assert "Sh0rt!x" not in output(result)
    assert "Traceback" not in output(result)
    assert await user_count(migrated) == before


@pytest.mark.parametrize("email", ["not-an-email", "two@@example.com"])
async def test_invalid_email_exits_2(migrated, email):
    before = await user_count(migrated)
    result = create_user(migrated, email, "--role", "viewer", "--password", PASSWORD)
    assert result.returncode == 2
    assert "email" in result.stderr
    assert PASSWORD not in output(result)
    assert await user_count(migrated) == before


async def test_unmigrated_database_exits_1_naming_migrate(databases):
    url = await databases.create()
    result = run(
        "create-user", "x@example.com", "--role", "admin", "--password", PASSWORD, database_url=url
    )
    assert result.returncode == 1
    assert "inventory migrate" in result.stderr
    assert "Traceback" not in output(result)
    assert PASSWORD not in output(result)
