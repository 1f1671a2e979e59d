"""An install given no signing key: it makes its own once, keeps it 0600, and keeps it.

Tokens signed with a key once published in the repository are refused by a
service started without a key, since no published key is accepted anywhere.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from inventory.config import PUBLISHED_SECRET_KEYS, load_settings
from inventory.secret_key import KEY_FILE_NAME, SecretKeyFileError, install_key, key_file_for
from tests.helpers import API
from tests.processes import run, serving

ADMIN = {"username": "owner@example.com", "password": "owner-password-for-keys"}


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``load_settings`` as a new process sees it, with no INVENTORY_ variable but ours."""
    for name in list(__import__("os").environ):
        if name.startswith("INVENTORY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def test_the_key_file_is_beside_a_sqlite_file_and_in_the_working_directory_otherwise(
    fresh_settings, tmp_path
):
    assert key_file_for(f"sqlite+aiosqlite:///{tmp_path}/data/x.db") == (
        tmp_path / "data" / KEY_FILE_NAME
    )
    assert key_file_for("sqlite+aiosqlite:///./inventory.db") == tmp_path / KEY_FILE_NAME
    assert key_file_for("sqlite+aiosqlite://") == tmp_path / KEY_FILE_NAME
    assert key_file_for("sqlite+aiosqlite:///:memory:") == tmp_path / KEY_FILE_NAME
    assert key_file_for("postgresql+asyncpg://u@db/inv") == tmp_path / KEY_FILE_NAME


def test_first_use_makes_a_key_only_the_owner_can_read_and_later_uses_read_it(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    key = install_key(url)
    path = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == key
    assert len(key) >= 32
    assert key not in PUBLISHED_SECRET_KEYS
    assert install_key(url) == key
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE_NAME]


def test_processes_starting_at_once_agree_on_one_key(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    go = tmp_path.parent / f"{tmp_path.name}.go"
    script = (
        "import os, time\n"
        "from inventory.secret_key import install_key\n"
        "print('ready', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.001)\n"
        f"print(install_key({url!r}))\n"
    )
    processes = [
        subprocess.Popen(  # noqa: S603 - this interpreter, our own module
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    for process in processes:  # every one at the starting line, imports done
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    go.touch()
    keys = {process.communicate(timeout=60)[0].strip() for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert keys == {(tmp_path / KEY_FILE_NAME).read_text().strip()}
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE_NAME]  # no candidates left


def test_a_key_file_others_may_read_is_refused(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    install_key(url)
    (tmp_path / KEY_FILE_NAME).chmod(0o644)
    with pytest.raises(SecretKeyFileError, match="chmod 600"):
        install_key(url)


def test_a_key_file_without_a_usable_key_is_refused(tmp_path):
    path = tmp_path / KEY_FILE_NAME
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(SecretKeyFileError, match="no usable signing key"):
        install_key(f"sqlite+aiosqlite:///{tmp_path}/x.db")


def test_load_settings_uses_the_install_key_unless_one_is_given(fresh_settings, monkeypatch):
    key = load_settings().secret_key.get_secret_value()
    assert (Path.cwd() / KEY_FILE_NAME).read_text().strip() == key  # the default ./inventory.db

    given = "g" * 40
    monkeypatch.setenv("INVENTORY_SECRET_KEY", given)
    monkeypatch.setenv("INVENTORY_DATABASE_URL", "postgresql+asyncpg://u@db/elsewhere")
    load_settings.cache_clear()
    assert load_settings().secret_key.get_secret_value() == given


@pytest.mark.parametrize("key", sorted(PUBLISHED_SECRET_KEYS))
def test_serve_refuses_a_published_key_with_one_line(tmp_path, key):
    result = run(
        "serve",
        "--port",
        "1",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
        INVENTORY_SECRET_KEY=key,
    )
    assert result.returncode == 1
    assert "published" in result.stderr
    assert "Traceback" not in result.stderr


def _forged(key: str, user_id: int) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "role": "admin",
        "iat": now,
        "exp": now + timedelta(minutes=10),
        "jti": "forged",
    }
    return jwt.encode(claims, key, algorithm="HS256")


def _me(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}{API}/users/me", headers={"Authorization": f"Bearer {token}"})


def test_a_service_started_without_a_key_refuses_published_keys_and_keeps_its_own(tmp_path):
    env = {
        "INVENTORY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/served.db",
        "INVENTORY_ADMIN_EMAIL": ADMIN["username"],
        "INVENTORY_ADMIN_PASSWORD": ADMIN["password"],
    }
    with serving(**env) as server:
        signed_in = httpx.post(f"{server.url}{API}/auth/token", data=ADMIN)
        assert signed_in.status_code == 200, signed_in.text
        token = signed_in.json()["access_token"]
        me = _me(server.url, token)
        assert me.status_code == 200
        admin_id = me.json()["id"]
        for published in PUBLISHED_SECRET_KEYS:
            assert _me(server.url, _forged(published, admin_id)).status_code == 401

    path = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text()

    with serving("--no-migrate", **env) as restarted:
        # Issued before the restart, still valid after it: the same key, read back.
        assert _me(restarted.url, token).json()["id"] == admin_id
        for published in PUBLISHED_SECRET_KEYS:
            assert _me(restarted.url, _forged(published, admin_id)).status_code == 401
    assert path.read_text() == key
