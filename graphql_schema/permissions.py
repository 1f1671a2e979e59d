"""Role checks for fields and mutations, by ``inventory.auth.signin``.

A refusal is the domain's Unauthenticated or Forbidden, with the words REST
uses; the error shaping gives it the code UNAUTHENTICATED or FORBIDDEN.
"""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission

from graphql_schema.context import Context, ContextInfo
from inventory.auth.signin import check_role
from inventory.models import Role


class _RoleRequired(BasePermission):
    role: ClassVar[Role]

    async def has_permission(self, source: Any, info: ContextInfo, **kwargs: Any) -> bool:
        context: Context = info.context
        check_role(await context.signed_in(), self.role)
        return True


class ViewerRequired(_RoleRequired):
    role = Role.viewer


class ClerkRequired(_RoleRequired):
    role = Role.clerk


class ManagerRequired(_RoleRequired):
    role = Role.manager
