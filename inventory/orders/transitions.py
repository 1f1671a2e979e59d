"""The one refusal of an order step its status does not allow."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from inventory.errors import InvalidTransition


def require_status(noun: str, status: StrEnum, allowed: Collection[StrEnum], action: str) -> None:
    """InvalidTransition (409, with the current status) unless ``status`` is in ``allowed``.

    ``noun`` names the order (``"purchase order PO-000007"``), ``action`` the
    step (``"receive"``).
    """
    if status not in allowed:
        raise InvalidTransition(
            f"{noun} is {status.value}; it cannot {action}", current_status=status.value
        )
