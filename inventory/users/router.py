"""REST routes for users: the caller's own account, and admin user management."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from inventory.deps import EntryId, PageDep, UnitOfWorkDep, ViewerUser, require_role
from inventory.kit.pagination import Page
from inventory.models import Role, User
from inventory.problems import problem_responses
from inventory.users import service
from inventory.users.schemas import UserCreate, UserRead, UserUpdate

router = APIRouter(tags=["users"])
# Everything but /users/me is user management, for admins only.
admin = APIRouter(prefix="/users", dependencies=[require_role(Role.admin)])


@router.get("/users/me", response_model=UserRead, summary="The signed-in user")
async def read_me(user: ViewerUser) -> User:
    return user


@admin.get(
    "",
    response_model=Page[UserRead],
    summary="List users",
    responses=problem_responses(422),
)
async def list_users(uow: UnitOfWorkDep, page: PageDep) -> Page[UserRead]:
    items, next_cursor = await service.list_users(uow.session, limit=page.limit, cursor=page.cursor)
    return Page(items=[UserRead.model_validate(u) for u in items], next_cursor=next_cursor)


@admin.post(
    "",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user",
    responses=problem_responses(409, 422),
)
async def create_user(data: UserCreate, uow: UnitOfWorkDep, response: Response) -> User:
    user = await service.create_user(uow.session, data)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return user


@admin.get(
    "/{user_id}",
    response_model=UserRead,
    summary="Get a user",
    responses=problem_responses(404),
)
async def get_user(user_id: EntryId, uow: UnitOfWorkDep) -> User:
    return await service.get_user(uow.session, user_id)


@admin.patch(
    "/{user_id}",
    response_model=UserRead,
    summary="Change a user's role, status or password",
    responses=problem_responses(404, 409, 422),
)
async def update_user(user_id: EntryId, data: UserUpdate, uow: UnitOfWorkDep) -> User:
    return await service.update_user(uow.session, user_id, data)


router.include_router(admin)
