"""Settings: the documented variables, .env support, and production refusing unsafe defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from inventory.config import PUBLISHED_SECRET_KEYS, Environment, Settings

PUBLISHED = sorted(PUBLISHED_SECRET_KEYS)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("INVENTORY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_match_the_spec():
    settings = Settings()
    assert settings.env is Environment.development
    assert settings.database_url == "sqlite+aiosqlite:///./inventory.db"
    assert settings.redis_url is None
    assert settings.broker_url is None
    assert settings.access_token_minutes == 30
    assert settings.admin_email is None
    assert settings.admin_password is None
    assert settings.cors_origins == []
    assert settings.max_upload_bytes == 20 * 1024 * 1024
    assert settings.allowed_hosts == ["*"]
    assert settings.reservation_ttl_seconds == 900
    assert settings.reservation_max_ttl_seconds == 86_400


def test_a_default_hold_longer_than_the_longest_allowed_is_refused(monkeypatch):
    monkeypatch.setenv("INVENTORY_RESERVATION_TTL_SECONDS", "600")
    monkeypatch.setenv("INVENTORY_RESERVATION_MAX_TTL_SECONDS", "300")
    with pytest.raises(ValidationError, match="RESERVATION_TTL_SECONDS must not exceed"):
        Settings()


def test_environment_variables_with_prefix(monkeypatch):
    monkeypatch.setenv("INVENTORY_DATABASE_URL", "postgresql+asyncpg://u@db/inv")
    monkeypatch.setenv("INVENTORY_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("INVENTORY_ALLOWED_HOSTS", "api.example,localhost")
    monkeypatch.setenv("INVENTORY_ACCESS_TOKEN_MINUTES", "15")
    monkeypatch.setenv("DATABASE_URL", "ignored-without-prefix")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://u@db/inv"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.allowed_hosts == ["api.example", "localhost"]
    assert settings.access_token_minutes == 15


def test_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("INVENTORY_MAX_UPLOAD_BYTES=1024\nINVENTORY_ENV=test\n")
    settings = Settings()
    assert settings.max_upload_bytes == 1024
    assert settings.env is Environment.test


def test_secret_key_is_not_shown_in_repr(monkeypatch):
    key = "k" * 40
    monkeypatch.setenv("INVENTORY_SECRET_KEY", key)
    assert key not in repr(Settings())


def test_short_secret_is_refused_in_every_environment(monkeypatch):
    monkeypatch.setenv("INVENTORY_SECRET_KEY", "k" * 31)
    for env in ("development", "test", "production"):
        monkeypatch.setenv("INVENTORY_ENV", env)
        with pytest.raises(ValidationError, match="at least 32 bytes"):
            Settings()


@pytest.mark.parametrize("key", PUBLISHED)
@pytest.mark.parametrize("env", ["development", "test", "production"])
def test_a_published_key_is_refused_in_every_environment(monkeypatch, env, key):
    monkeypatch.setenv("INVENTORY_ENV", env)
    monkeypatch.setenv("INVENTORY_SECRET_KEY", key)
    with pytest.raises(ValidationError, match="published"):
        Settings()


@pytest.mark.parametrize("key", [None, *PUBLISHED, "short-key"])
def test_production_refuses_missing_published_or_weak_secret(monkeypatch, key):
    monkeypatch.setenv("INVENTORY_ENV", "production")
    if key is not None:
        monkeypatch.setenv("INVENTORY_SECRET_KEY", key)
    with pytest.raises(ValidationError, match="INVENTORY_SECRET_KEY"):
        Settings()


def test_settings_built_without_a_key_get_a_random_one_and_write_no_file(tmp_path):
    first, second = Settings(), Settings()
    keys = {first.secret_key.get_secret_value(), second.secret_key.get_secret_value()}
    assert len(keys) == 2
    assert all(len(key) >= 32 and key not in PUBLISHED_SECRET_KEYS for key in keys)
    assert not first.secret_key_given
    assert list(tmp_path.iterdir()) == []


def test_production_accepts_a_strong_secret(monkeypatch):
    monkeypatch.setenv("INVENTORY_ENV", "production")
    monkeypatch.setenv("INVENTORY_SECRET_KEY", "k" * 48)
    assert Settings().env is Environment.production


@pytest.mark.parametrize(
    ("name", "value"),
    [("INVENTORY_ENV", "staging"), ("INVENTORY_ACCESS_TOKEN_MINUTES", "0")],
)
def test_invalid_values_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()
