"""Interactions for linking tests: every field that linking reads is explicit."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.interactions.models import Interaction
from app.links.models import LinkCandidate, link_backlog

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


async def make(
    session: AsyncSession,
    seller_id: int,
    channel: str = "review",
    *,
    hours: float = 0,
    **fields: Any,
) -> Interaction:
    """An interaction `hours` after T0; no product, customer, order, intent or name unless given."""
    values: dict[str, Any] = {
        "marketplace": "wildberries",
        "external_id": f"lnk-{next(_ids)}",
        "status": "open",
        "priority": "normal",
        "needs_response": True,
        "source": "wb_api",
        "occurred_at": T0 + timedelta(hours=hours),
        "text": "Обычный текст",
        "intent": None,
        "extra": {},
    }
    row = Interaction(seller_id=seller_id, channel=channel, **(values | fields))
    session.add(row)
    await session.flush()
    return row


async def stored(session: AsyncSession, seller_id: int) -> dict[tuple[int, int], LinkCandidate]:
    """Every stored link of the seller by (source_id, target_id)."""
    rows = await session.scalars(
        select(LinkCandidate)
        .where(LinkCandidate.seller_id == seller_id)
        .execution_options(populate_existing=True)
    )
    return {(r.source_id, r.target_id): r for r in rows}


async def backlog_of(session: AsyncSession, seller_id: int) -> list[int | None]:
    """The seller's pending link backlog: interaction ids ascending, None (all) last."""
    lb = link_backlog
    rows = await session.scalars(
        select(lb.c.interaction_id)
        .where(lb.c.seller_id == seller_id)
        .order_by(lb.c.interaction_id.asc().nulls_last())
    )
    return list(rows)
