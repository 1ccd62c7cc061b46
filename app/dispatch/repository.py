"""Outbox queries, each scoped to a seller where a caller's request reaches them."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.dispatch.models import ACTIVE_STATES, WAITING_STATES, OutboundReply
from app.interactions.models import Interaction


async def lock_interaction(
    session: AsyncSession, seller_id: int, interaction_id: int
) -> Interaction | None:
    """The interaction, locked for this transaction: replies to one item queue one at a time.

    FOR NO KEY UPDATE: it excludes other writers of the row, but not the FOR KEY SHARE locks
    that rows referencing it take (a link being written, an event), so those never wait on an
    operator, nor deadlock with one."""
    return await session.scalar(
        select(Interaction)
        .where(Interaction.id == interaction_id, Interaction.seller_id == seller_id)
        .with_for_update(key_share=True)
    )


async def get_interaction(session: AsyncSession, interaction_id: int) -> Interaction | None:
    """The interaction a reply answers (a worker's read: the reply row carries the seller)."""
    return await session.get(Interaction, interaction_id)


async def lock_interactions(session: AsyncSession, seller_id: int, ids: Sequence[int]) -> None:
    """Lock these interactions (the seller's) for this transaction, in id order: every
    transaction that locks several interactions takes them in that one order, so two of them
    wait for each other but never deadlock."""
    await session.execute(
        select(Interaction.id)
        .where(Interaction.seller_id == seller_id, Interaction.id.in_(sorted(set(ids))))
        .order_by(Interaction.id)
        .with_for_update(key_share=True)
    )


async def add(session: AsyncSession, reply: OutboundReply) -> None:
    """Insert the reply in a savepoint: an IntegrityError (its Idempotency-Key taken meanwhile)
    undoes only this insert, and reaches the caller."""
    session.add(reply)
    async with session.begin_nested():
        await session.flush()


async def send_soon(session: AsyncSession, reply_ids: Sequence[int], now: datetime) -> None:
    """Make queued (or failed) replies due for the sweeper's next pass."""
    await session.execute(
        update(OutboundReply)
        .where(OutboundReply.id.in_(reply_ids), OutboundReply.state.in_(WAITING_STATES))
        .values(next_attempt_at=now)
    )


async def by_idempotency_key(
    session: AsyncSession, seller_id: int, key: str
) -> OutboundReply | None:
    return await session.scalar(
        select(OutboundReply).where(
            OutboundReply.seller_id == seller_id, OutboundReply.idempotency_key == key
        )
    )


async def live_reply(
    session: AsyncSession, interaction_id: int, action: str
) -> OutboundReply | None:
    """The reply (queued, sending, failed or sent) that makes another one a double answer."""
    return await session.scalar(
        select(OutboundReply).where(
            OutboundReply.interaction_id == interaction_id,
            OutboundReply.action == action,
            OutboundReply.state != "dead",
        )
    )


async def get(session: AsyncSession, seller_id: int, reply_id: int) -> OutboundReply | None:
    return await session.scalar(
        select(OutboundReply).where(
            OutboundReply.id == reply_id, OutboundReply.seller_id == seller_id
        )
    )


async def for_interaction(
    session: AsyncSession, seller_id: int, interaction_id: int, *, limit: int = 50
) -> Sequence[OutboundReply]:
    result = await session.scalars(
        select(OutboundReply)
        .where(
            OutboundReply.seller_id == seller_id,
            OutboundReply.interaction_id == interaction_id,
        )
        .order_by(OutboundReply.id.desc())
        .limit(limit)
    )
    return result.all()


async def claim(session: AsyncSession, reply_id: int, now: datetime) -> OutboundReply | None:
    """Move a queued or failed reply to `sending` (one more attempt); None if it is not ours to
    send (already sending elsewhere, sent or dead)."""
    return await session.scalar(
        update(OutboundReply)
        .where(OutboundReply.id == reply_id, OutboundReply.state.in_(WAITING_STATES))
        .values(
            state="sending",
            attempts=OutboundReply.attempts + 1,
            sending_since=now,
            updated_at=now,
        )
        .returning(OutboundReply)
        .execution_options(populate_existing=True)
    )


async def record_attempt(
    session: AsyncSession, reply_id: int, attempt: int, values: dict[str, object]
) -> int | None:
    """Write an attempt's outcome, only if the row is still `sending` that attempt (a stale
    attempt finds another one took it over: None)."""
    return await session.scalar(
        update(OutboundReply)
        .where(
            OutboundReply.id == reply_id,
            OutboundReply.state == "sending",
            OutboundReply.attempts == attempt,
        )
        .values(values)
        .returning(OutboundReply.id)
    )


async def pending_count(session: AsyncSession) -> int:
    """Replies not final yet, of every seller."""
    count = await session.scalar(select(func.count()).where(OutboundReply.state.in_(ACTIVE_STATES)))
    return int(count or 0)


async def due(session: AsyncSession, now: datetime, limit: int) -> Sequence[OutboundReply]:
    """Rows the sweeper looks at: not final and due, oldest first, locked past other sweepers."""
    result = await session.scalars(
        select(OutboundReply)
        .where(OutboundReply.state.in_(ACTIVE_STATES), OutboundReply.next_attempt_at <= now)
        .order_by(OutboundReply.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return result.all()


async def release_waiting(
    session: AsyncSession, seller_id: int, now: datetime, ids: Sequence[int] | None = None
) -> None:
    """The seller's queued replies (or these of them) become due now (the sweeper sends them):
    those its paused account kept waiting, once the account works again."""
    only = [OutboundReply.id.in_(ids)] if ids is not None else []
    await session.execute(
        update(OutboundReply)
        .where(
            OutboundReply.seller_id == seller_id,
            OutboundReply.state == "queued",
            OutboundReply.next_attempt_at > now,
            *only,
        )
        .values(next_attempt_at=now)
    )
