"""The drafts' SQL: the last draft of each interaction."""

from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.drafts.models import Draft


async def get(session: AsyncSession, interaction_id: int) -> Draft | None:
    return await session.get(Draft, interaction_id)


async def save(session: AsyncSession, interaction_id: int, values: dict[str, Any]) -> Draft:
    """Keep `values` as the interaction's last draft (a new draft replaces the previous one)."""
    stmt = insert(Draft).values(interaction_id=interaction_id, **values)
    draft = await session.scalar(
        stmt.on_conflict_do_update(index_elements=[Draft.interaction_id], set_=values)
        .returning(Draft)
        .execution_options(populate_existing=True)
    )
    assert draft is not None  # an upsert returns its row
    return draft
