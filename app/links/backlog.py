"""Draining the link backlog: what the `links.recompute` task and the control tick do.

One task per seller covers every row queued until it ends. It takes the rows a chunk at a time,
each chunk in the transaction that writes its links (a killed worker's chunk is rolled back and
stays queued). Links compare an item with the seller's other items, so while the seller's sync
still writes them the task does nothing and the sync's end asks again; an item waits for that at
most `SYNC_WAIT_LIMIT` (a seller that never stops syncing gets its links anyway).
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import locks
from app.core.db import transaction
from app.interactions.models import CHANNELS
from app.links import repository, service

logger = logging.getLogger(__name__)

CHUNK = 5000  # backlog rows per transaction: bounded locks, and bounded work lost to a kill
SYNC_WAIT_LIMIT = timedelta(minutes=10)
# After a failed drain, the control tick asks again once the marker has expired.
ERROR_BACKOFF_SECONDS = 60
OVERDUE_SCAN_LIMIT = 1000  # sellers the tick looks at per run, the longest waiting first


@dataclass(frozen=True)
class Drained:
    status: Literal["done", "nothing", "waiting_for_sync", "busy"]
    written: int = 0  # link rows written


async def drain(
    maker: async_sessionmaker[AsyncSession], redis: Redis, seller_id: int, *, chunk: int = CHUNK
) -> Drained:
    """The `links.recompute` task's body: the seller's whole backlog, or nothing while its sync
    still writes. Idempotent: a drained row is gone, a redelivered task finds nothing."""
    key = service.marker_key(seller_id)
    try:
        result = await _drain(maker, redis, seller_id, chunk)
    except Exception:
        await redis.expire(key, ERROR_BACKOFF_SECONDS)
        raise
    if result.status == "busy":
        return result  # the drain that holds the seller goes on until the backlog is empty
    await redis.delete(key)
    # Rows committed after our last look (their producer saw our marker and queued nothing),
    # or a sync that ended while we looked: the next task is ours to queue.
    if await _due(maker, redis, seller_id):
        await service.request_now(seller_id)
    return result


async def _drain(
    maker: async_sessionmaker[AsyncSession], redis: Redis, seller_id: int, chunk: int
) -> Drained:
    oldest = await _oldest(maker, seller_id)
    if oldest is None:
        return Drained("nothing")
    if not await _may_drain(redis, seller_id, oldest):
        return Drained("waiting_for_sync")
    written = 0
    while True:
        async with transaction(maker) as session:
            if not await repository.try_lock_seller(session, seller_id):
                return Drained("busy", written)
            step = await _drain_chunk(session, seller_id, chunk)
        if step is None:
            return Drained("done", written)
        written += step
        await redis.expire(service.marker_key(seller_id), service.MARKER_TTL_SECONDS)


async def _drain_chunk(session: AsyncSession, seller_id: int, chunk: int) -> int | None:
    """One chunk in the caller's transaction; None when the backlog is empty."""
    if await repository.take_whole_seller(session, seller_id):
        return await service.recompute_seller(session, seller_id)
    ids = await repository.take_backlog(session, seller_id, chunk)
    if not ids:
        return None
    return await service.recompute_for(session, seller_id, ids)


async def _oldest(maker: async_sessionmaker[AsyncSession], seller_id: int) -> datetime | None:
    async with transaction(maker) as session:
        return await repository.oldest_pending(session, seller_id)


async def _may_drain(
    redis: Redis, seller_id: int, oldest: datetime, now: datetime | None = None
) -> bool:
    waited = (now or datetime.now(UTC)) - oldest
    return waited >= SYNC_WAIT_LIMIT or not await _syncing(redis, seller_id)


async def _syncing(redis: Redis, seller_id: int) -> bool:
    """Whether a sync of this seller runs now (its lock is held: a dead worker's expires)."""
    keys = (locks.sync_key(seller_id, channel) for channel in CHANNELS)
    return bool(await redis.exists(*keys))


async def _due(maker: async_sessionmaker[AsyncSession], redis: Redis, seller_id: int) -> bool:
    oldest = await _oldest(maker, seller_id)
    return oldest is not None and await _may_drain(redis, seller_id, oldest)


async def request_if_due(
    maker: async_sessionmaker[AsyncSession], redis: Redis, seller_id: int
) -> bool:
    """After a sync run: queue the seller's recompute if it has a backlog that may be drained
    now and no task is pending. True when this call queued it."""
    return await _due(maker, redis, seller_id) and await service.request_now(seller_id)


async def request_overdue(session: AsyncSession, redis: Redis) -> list[int]:
    """Control tick, a safety net: queue a recompute (after commit) for every seller whose
    backlog may be drained and who has no task pending (the task was lost, or the sync died
    before its end could ask). Returns those sellers."""
    now = datetime.now(UTC)
    rows = await repository.pending_sellers(session, OVERDUE_SCAN_LIMIT)
    if not rows:
        return []
    markers = await redis.mget([service.marker_key(seller_id) for seller_id, _ in rows])
    overdue = []
    for (seller_id, oldest), marker in zip(rows, markers, strict=True):
        if marker is None and await _may_drain(redis, seller_id, oldest, now):
            service.request_after_commit(session, seller_id)
            overdue.append(seller_id)
    if overdue:
        logger.info("link backlog without a pending recompute, queued for sellers %s", overdue)
    return overdue
