"""The drafts' SQL: the last draft of each interaction, and what a draft reads of a chat."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.drafts.models import Draft
from app.interactions.models import ChatMessage


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


async def chat_messages(
    session: AsyncSession, seller_id: int, interaction_id: int, *, limit: int
) -> list[tuple[str, str | None]]:
    """(direction, text) of a chat's newest `limit` messages, newest first."""
    result = await session.execute(
        select(ChatMessage.direction, ChatMessage.text)
        .where(ChatMessage.seller_id == seller_id, ChatMessage.interaction_id == interaction_id)
        .order_by(ChatMessage.sent_at.desc(), ChatMessage.id.desc())
        .limit(limit)
    )
    return [(direction, text) for direction, text in result]
