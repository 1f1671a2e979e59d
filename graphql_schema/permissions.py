"""Role checks for fields and mutations; failures are GraphQL errors with a code."""

from __future__ import annotations

from typing import Any, ClassVar

from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.types import Info

from inventory.models import Role


class _RoleRequired(BasePermission):
    role: ClassVar[Role]

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        user = await info.context.user()
        if user is None:
            raise GraphQLError(
                "Sign in first: send a bearer token.", extensions={"code": "UNAUTHENTICATED"}
            )
        if not user.role.allows(self.role):
            raise GraphQLError(
                f"This needs the {self.role.value} role or higher.",
                extensions={"code": "FORBIDDEN"},
            )
        return True


class ViewerRequired(_RoleRequired):
    role = Role.viewer


class ClerkRequired(_RoleRequired):
    role = Role.clerk


class ManagerRequired(_RoleRequired):
    role = Role.manager
