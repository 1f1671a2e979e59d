"""Fixtures of the job tests."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from inventory.db import Database
from inventory.models import Role
from tests.conftest import Account


@pytest.fixture
def database(app: FastAPI, accounts: dict[Role, Account]) -> Database:
    """The app's database, emptied (``accounts`` empties it)."""
    db: Database = app.state.db
    return db
