from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.auth.exceptions import ApiTokenCannotMint
from app.auth.models import ApiToken, User
from app.auth.throttle import LoginThrottle
from app.core import security
from app.core.config import Settings
from app.core.errors import Conflict, NotFound, Unauthorized


class Credential(StrEnum):
    """What the caller authenticated with."""

    SESSION = "session"  # an access token from a password login (POST /auth/login)
    # a long-lived API token (POST /auth/tokens)
    API_TOKEN = "api_token"  # noqa: S105 - a kind of credential, not one


@dataclass(frozen=True)
class Principal:
    """Who is calling, and for which seller: every query is scoped by `seller_id`."""

    user_id: int
    seller_id: int
    role: str
    credential: Credential


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await repository.get_user_by_email(session, email)


async def create_user(
    session: AsyncSession,
    *,
    seller_id: int,
    email: str,
    password: str,
    full_name: str = "",
    role: str = "operator",
) -> User:
    email = email.strip().lower()
    if await repository.get_user_by_email(session, email) is not None:
        raise Conflict(f"a user with email {email} already exists")
    user = User(
        seller_id=seller_id,
        email=email,
        password_hash=security.hash_password(password),
        full_name=full_name,
        role=role,
    )
    session.add(user)
    await session.flush()
    return user


async def login(
    session: AsyncSession,
    settings: Settings,
    throttle: LoginThrottle,
    *,
    email: str,
    password: str,
    address: str,
) -> str:
    """A session token for a right e-mail and password, unless failed logins for the e-mail or
    from the client `address` have reached their limit (`app/auth/throttle.py`)."""
    await throttle.attempt(email, address)
    user = await repository.get_user_by_email(session, email)
    valid = security.verify_password(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        raise Unauthorized("wrong email or password", code="invalid_credentials")
    await throttle.succeeded(email, address)
    user.last_login_at = datetime.now(UTC)
    return security.create_access_token(
        settings.jwt_secret.get_secret_value(),
        user_id=user.id,
        seller_id=user.seller_id,
        ttl=timedelta(minutes=settings.jwt_ttl_minutes),
    )


# A session token is verified (signature, expiry) and checked against `users` (still there,
# still active) at most once per `auth_cache_seconds` per process: the hot paths skip both.
# So a disabled user, or a token past its expiry, is refused at most that much later.
PrincipalCache = TTLCache[str, Principal]


def principal_cache(settings: Settings) -> PrincipalCache | None:
    if settings.auth_cache_seconds <= 0:
        return None
    return TTLCache(maxsize=10_000, ttl=settings.auth_cache_seconds)


async def resolve_bearer(
    session: AsyncSession, settings: Settings, token: str, cache: PrincipalCache | None = None
) -> Principal:
    """The token's principal, checked against the database; a session token's is then kept in
    `cache` (the caller looks there first: `get_principal`)."""
    session_token = not token.startswith(security.API_TOKEN_PREFIX)
    now = datetime.now(UTC)
    if not session_token:
        api_token = await repository.get_active_token(
            session, security.api_token_digest(token), now
        )
        if api_token is None:
            raise Unauthorized("invalid or revoked API token")
        api_token.last_used_at = now
        user_id, seller_id = api_token.user_id, api_token.seller_id
    else:
        claims = security.decode_access_token(settings.jwt_secret.get_secret_value(), token)
        if claims is None:
            raise Unauthorized("invalid or expired access token")
        user_id, seller_id = claims
    user = await repository.get_user(session, seller_id=seller_id, user_id=user_id)
    if user is None or not user.is_active:
        raise Unauthorized("user is disabled or no longer exists")
    principal = Principal(
        user_id=user.id,
        seller_id=user.seller_id,
        role=user.role,
        credential=Credential.SESSION if session_token else Credential.API_TOKEN,
    )
    if session_token and cache is not None:
        cache[token] = principal
    return principal


async def current_user(session: AsyncSession, principal: Principal) -> User:
    user = await repository.get_user(
        session, seller_id=principal.seller_id, user_id=principal.user_id
    )
    if user is None:
        raise NotFound("user not found")
    return user


async def list_api_tokens(session: AsyncSession, principal: Principal) -> list[ApiToken]:
    return await repository.list_tokens(
        session, seller_id=principal.seller_id, user_id=principal.user_id
    )


async def create_api_token(
    session: AsyncSession, principal: Principal, name: str, expires_in_days: int | None
) -> tuple[ApiToken, str]:
    """A new API token for the caller. Only a password login's session may mint one: a leaked
    API token cannot mint itself successors, so revoking it (or disabling the user) ends it."""
    if principal.credential is not Credential.SESSION:
        raise ApiTokenCannotMint(
            "API tokens are created with the access token of a password login, "
            "not with another API token"
        )
    token = security.new_api_token()
    expires_at = (
        datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days is not None else None
    )
    row = ApiToken(
        seller_id=principal.seller_id,
        user_id=principal.user_id,
        name=name,
        token_digest=security.api_token_digest(token),
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row, token


async def revoke_api_token(session: AsyncSession, principal: Principal, token_id: int) -> None:
    revoked = await repository.revoke_token(
        session,
        seller_id=principal.seller_id,
        user_id=principal.user_id,
        token_id=token_id,
        now=datetime.now(UTC),
    )
    if not revoked:
        raise NotFound("API token not found")
