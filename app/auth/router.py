from fastapi import APIRouter, status

from app.auth import repository, service
from app.auth.dependencies import CurrentPrincipal
from app.auth.schemas import (
    AccessToken,
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenRead,
    LoginRequest,
    UserRead,
)
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import ERROR_RESPONSES, ErrorEnvelope, NotFound
from app.core.schemas import Page

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


@router.post("/login", response_model=AccessToken)
async def login(body: LoginRequest, session: SessionDep, settings: SettingsDep) -> AccessToken:
    token = await service.login(session, settings, body.email, body.password)
    return AccessToken(access_token=token, expires_in=settings.jwt_ttl_minutes * 60)


@router.get("/me", response_model=UserRead)
async def me(principal: CurrentPrincipal, session: SessionDep) -> UserRead:
    user = await repository.get_user(
        session, seller_id=principal.seller_id, user_id=principal.user_id
    )
    if user is None:
        raise NotFound("user not found")
    return UserRead.model_validate(user)


@router.post(
    "/tokens",
    response_model=ApiTokenCreated,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: {
            "model": ErrorEnvelope,
            "description": "`api_token_cannot_mint`: the caller used an API token; tokens are "
            "created with the access token of a password login",
        }
    },
)
async def create_token(
    body: ApiTokenCreate, principal: CurrentPrincipal, session: SessionDep
) -> ApiTokenCreated:
    """A long-lived API token, shown once. Only a password login's access token may create
    one, so an API token cannot mint successors: revoking it ends it."""
    row, token = await service.create_api_token(session, principal, body.name, body.expires_in_days)
    read = ApiTokenRead.model_validate(row)
    return ApiTokenCreated(**read.model_dump(), token=token)


@router.get("/tokens", response_model=Page[ApiTokenRead])
async def list_tokens(principal: CurrentPrincipal, session: SessionDep) -> Page[ApiTokenRead]:
    rows = await repository.list_tokens(
        session, seller_id=principal.seller_id, user_id=principal.user_id
    )
    return Page[ApiTokenRead](items=[ApiTokenRead.model_validate(r) for r in rows])


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(token_id: int, principal: CurrentPrincipal, session: SessionDep) -> None:
    await service.revoke_api_token(session, principal, token_id)
