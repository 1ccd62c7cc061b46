from fastapi import APIRouter, Request, status

from app.auth import service
from app.auth.dependencies import CurrentPrincipal, LoginThrottleDep
from app.auth.schemas import (
    AccessToken,
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenRead,
    LoginRequest,
    UserRead,
)
from app.auth.throttle import client_address
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import ERROR_RESPONSES, ErrorEnvelope
from app.core.schemas import Id, Page

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


@router.post(
    "/login",
    response_model=AccessToken,
    responses={
        429: {
            "model": ErrorEnvelope,
            "description": "`login_throttled`: too many failed logins for this e-mail or from "
            "this address; `Retry-After` says when to try again",
        },
        503: {
            "model": ErrorEnvelope,
            "description": "`login_unavailable`: failed logins cannot be counted (Redis is down)",
        },
    },
)
async def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
) -> AccessToken:
    """A session access token for an e-mail and password. Failed attempts are limited per
    e-mail and per client address (`LOGIN_MAX_FAILURES_PER_*` within
    `LOGIN_FAILURE_WINDOW_SECONDS`)."""
    address = client_address(request.client.host if request.client else None)
    token = await service.login(
        session, settings, throttle, email=body.email, password=body.password, address=address
    )
    return AccessToken(access_token=token, expires_in=settings.jwt_ttl_minutes * 60)


@router.get("/me", response_model=UserRead)
async def me(principal: CurrentPrincipal, session: SessionDep) -> UserRead:
    return UserRead.model_validate(await service.current_user(session, principal))


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
    rows = await service.list_api_tokens(session, principal)
    return Page[ApiTokenRead](items=[ApiTokenRead.model_validate(r) for r in rows])


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(token_id: Id, principal: CurrentPrincipal, session: SessionDep) -> None:
    await service.revoke_api_token(session, principal, token_id)
