from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.interactions.models import Interaction


async def list_newest(
    session: AsyncSession, *, seller_id: int, limit: int, after: tuple[datetime, int] | None
) -> list[Interaction]:
    """Newest first, keyset-paginated on (occurred_at, id): stable while new items arrive."""
    stmt = select(Interaction).where(Interaction.seller_id == seller_id)
    if after is not None:
        stmt = stmt.where(tuple_(Interaction.occurred_at, Interaction.id) < after)
    stmt = stmt.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())
