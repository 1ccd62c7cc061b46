from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import service
from app.auth.service import Principal
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="Access token from /auth/login, or an API token")


async def get_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token")
    return await service.resolve_bearer(
        session, settings, credentials.credentials, request.app.state.principal_cache
    )


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
