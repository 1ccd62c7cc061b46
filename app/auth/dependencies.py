from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import service
from app.auth.service import Principal, PrincipalCache
from app.auth.throttle import LoginThrottle
from app.core.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="Access token from /auth/login, or an API token")


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller. A cached session token costs no database work, so no session is opened for
    it; otherwise one short transaction resolves the token (an API token's last use is saved)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token")
    state, token = request.app.state, credentials.credentials
    cache: PrincipalCache | None = state.principal_cache
    if cache is not None and (cached := cache.get(token)) is not None:
        return cached
    async with state.database.transaction() as session:
        return await service.resolve_bearer(session, state.settings, token, cache)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_login_throttle(request: Request) -> LoginThrottle:
    return LoginThrottle(request.app.state.redis, request.app.state.settings)


LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]
