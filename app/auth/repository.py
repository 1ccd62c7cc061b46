from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiToken, User


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email.strip().lower()))
    return result.scalar_one_or_none()


async def get_user(session: AsyncSession, *, seller_id: int, user_id: int) -> User | None:
    result = await session.execute(
        select(User).where(User.id == user_id, User.seller_id == seller_id)
    )
    return result.scalar_one_or_none()


async def get_active_token(session: AsyncSession, digest: str, now: datetime) -> ApiToken | None:
    result = await session.execute(
        select(ApiToken).where(
            ApiToken.token_digest == digest,
            ApiToken.revoked_at.is_(None),
            (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now),
        )
    )
    return result.scalar_one_or_none()


async def list_tokens(session: AsyncSession, *, seller_id: int, user_id: int) -> list[ApiToken]:
    result = await session.execute(
        select(ApiToken)
        .where(
            ApiToken.seller_id == seller_id,
            ApiToken.user_id == user_id,
            ApiToken.revoked_at.is_(None),
        )
        .order_by(ApiToken.id)
    )
    return list(result.scalars())


async def revoke_token(
    session: AsyncSession, *, seller_id: int, user_id: int, token_id: int, now: datetime
) -> bool:
    result = await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            ApiToken.seller_id == seller_id,
            ApiToken.user_id == user_id,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .returning(ApiToken.id)
    )
    return result.scalar_one_or_none() is not None
