"""The signing key of an install given none: generated on first start, kept in a 0600 file.

Outside production, with no ``INVENTORY_SECRET_KEY``, every process of the
install reads one key from ``.inventory-secret`` beside the SQLite database
(or in the working directory for any other database), so tokens survive a
restart and every worker accepts the others'. Several processes may start at
once: each writes a complete candidate to a private temporary file and
hard-links it into place, which succeeds for exactly one of them and never
exposes a half-written file; the others read the winner's key.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

KEY_FILE_NAME = ".inventory-secret"
MIN_LENGTH = 32


class SecretKeyFileError(ValueError):
    """The key file cannot be made or cannot be trusted; the message says what to do."""


def key_file_for(database_url: str) -> Path:
    """Beside the SQLite database file; the working directory for anything else."""
    url = make_url(database_url)
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    if url.get_backend_name() == "sqlite" and not in_memory:
        path = Path(database.removeprefix("file:"))
        return path.absolute().parent / KEY_FILE_NAME
    return Path.cwd() / KEY_FILE_NAME


def install_key(database_url: str) -> str:
    """This install's key: read from its file, or generated into it on first use."""
    path = key_file_for(database_url)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    try:
        _create(path, secrets.token_urlsafe(48))
        return _read(path)
    except OSError as exc:
        raise SecretKeyFileError(
            f"no INVENTORY_SECRET_KEY, and the generated key could not be kept in {path}: "
            f"{exc.strerror or exc}; set INVENTORY_SECRET_KEY or make the directory writable"
        ) from None


def _create(path: Path, key: str) -> None:
    """Put ``key`` at ``path`` unless some process already has: whole, or not at all."""
    fd, candidate = tempfile.mkstemp(dir=path.parent, prefix=f"{KEY_FILE_NAME}.")  # 0600
    try:
        with os.fdopen(fd, "w") as file:
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(candidate, path)  # atomic, and refuses to replace: the first one wins
        except FileExistsError:
            return
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new name survives a crash too
        finally:
            os.close(directory)
    finally:
        os.unlink(candidate)


def _read(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as file:
        mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
        if mode & 0o077:
            raise SecretKeyFileError(
                f"{path} holds the signing key but others may read it (mode {mode:04o}): "
                f"run `chmod 600 {path}`, or set INVENTORY_SECRET_KEY"
            )
        key = file.read().strip()
    if len(key.encode()) < MIN_LENGTH:
        raise SecretKeyFileError(
            f"{path} holds no usable signing key (fewer than {MIN_LENGTH} bytes): "
            "delete it to have a new one generated (signing everyone out), "
            "or set INVENTORY_SECRET_KEY"
        )
    return key
