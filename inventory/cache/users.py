"""Signed-in users remembered by id, so a request with a known token runs no SQL for its user.

Any change to a user, heard from this process or another, moves the
generation on: a user read before the change is then not remembered, even if
the read finishes after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from cachetools import TTLCache

from inventory.auth.signin import UserBell
from inventory.models import User

MAX_USERS = 10_000


class RememberedUsers:
    """Users by id, for at most ``ttl`` seconds each."""

    def __init__(self, ttl: float) -> None:
        self._users: TTLCache[int, User] = TTLCache(maxsize=MAX_USERS, ttl=ttl)
        self.generation = 0
        self._bells: dict[int, set[UserBell]] = {}

    def get(self, user_id: int) -> User | None:
        return self._users.get(user_id)

    def remember(self, user_id: int, user: User, seen_generation: int) -> None:
        """Keep ``user``, unless a change to any user was heard since it was read."""
        if seen_generation == self.generation:
            self._users[user_id] = user

    def forget(self, user_ids: Iterable[int]) -> None:
        for user_id in user_ids:
            self._users.pop(user_id, None)
            self.generation += 1
            for bell in self._bells.get(user_id, ()):
                bell.ring()

    def forget_all(self) -> None:
        """Every user may have changed unheard (Redis was out of reach): ring every bell."""
        self._users.clear()
        self.generation += 1
        for bells in self._bells.values():
            for bell in bells:
                bell.ring()

    @contextmanager
    def watch(self, user_id: int) -> Iterator[UserBell]:
        """A bell rung by every change to ``user_id`` heard while the block lasts."""
        bell = UserBell()
        self._bells.setdefault(user_id, set()).add(bell)
        try:
            yield bell
        finally:
            bells = self._bells[user_id]
            bells.discard(bell)
            if not bells:
                del self._bells[user_id]
