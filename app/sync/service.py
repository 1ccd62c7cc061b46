"""Sync runs: created by the beat tick or "sync now", executed by `sync.run` tasks.

A run covers one seller+channel. It holds a Redis lock (one sync per seller+channel), reads the
marketplace page by page and commits each page together with the cursor that covers it, so a
crash loses nothing and a rerun re-reads at most one page (deduplicated by identity).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.connectors.base import AuthError, ConnectorError
from app.connectors.wildberries.client import WildberriesClient
from app.connectors.wildberries.mapping import SellerContext
from app.core import locks
from app.core.db import transaction
from app.core.egress import EgressPolicy
from app.core.ratelimit import Limit, RateLimiter
from app.core.security import SecretBox
from app.sellers.models import MarketplaceAccount, Seller, SellerSettings
from app.sync import channels, repository
from app.sync.models import SyncRun
from app.worker import enqueue

logger = logging.getLogger(__name__)

CHANNELS = ("review", "question", "chat")
FINAL_STATUSES = ("succeeded", "partial", "failed", "skipped")
RUN_TASK = "sync.run"


def lock_key(seller_id: int, channel: str) -> str:
    return f"sellerdesk:lock:sync:{seller_id}:{channel}"


async def is_syncing(redis: Redis, seller_id: int) -> bool:
    """Whether a sync of this seller runs now (its lock is held: a dead worker's expires)."""
    return bool(await redis.exists(*(lock_key(seller_id, channel) for channel in CHANNELS)))


@dataclass
class SyncDeps:
    """What executing a run needs; tests pass their own (e.g. a sandbox transport)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    settings: Settings
    transport: httpx.AsyncBaseTransport | None = None


class NoAccount(ConnectorError):
    pass


# --- creating runs -----------------------------------------------------------------------


async def active_run_ids(session: AsyncSession, seller_id: int) -> dict[str, int]:
    """Channel → id of a queued or running run of this seller."""
    result = await session.execute(
        select(SyncRun.channel, func.max(SyncRun.id))
        .where(SyncRun.seller_id == seller_id, SyncRun.status.in_(("queued", "running")))
        .group_by(SyncRun.channel)
    )
    return {row.channel: row[1] for row in result}


async def request_runs(
    session: AsyncSession,
    seller_id: int,
    channels_: tuple[str, ...],
    *,
    trigger: str,
    full_resync: bool = False,
) -> tuple[list[SyncRun], dict[str, int]]:
    """Queue a run per channel unless one is already queued or running for it.

    Returns (new runs, {channel: existing run id}); the tasks go out after commit.
    """
    active = await active_run_ids(session, seller_id)
    runs = [
        SyncRun(
            seller_id=seller_id,
            marketplace="wildberries",
            channel=channel,
            trigger=trigger,
            full_resync=full_resync,
            status="queued",
        )
        for channel in channels_
        if channel not in active
    ]
    session.add_all(runs)
    await session.flush()
    for run in runs:
        enqueue.defer(session, RUN_TASK, run.id)
    return runs, {c: active[c] for c in channels_ if c in active}


async def fan_out_due(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """Beat tick: queue runs for the sellers whose next sync is due, and schedule the next one.

    Only due sellers are read (indexed `next_sync_at`); SKIP LOCKED lets ticks overlap safely.
    """
    due = (
        select(Seller.id, SellerSettings.sync_interval_minutes)
        .join(SellerSettings, SellerSettings.seller_id == Seller.id)
        .join(
            MarketplaceAccount,
            (MarketplaceAccount.seller_id == Seller.id)
            & (MarketplaceAccount.marketplace == "wildberries")
            & MarketplaceAccount.is_active,
        )
        .where((Seller.next_sync_at.is_(None)) | (Seller.next_sync_at <= now))
        .order_by(Seller.next_sync_at.asc().nullsfirst())
        .limit(limit)
        .with_for_update(of=Seller, skip_locked=True)
    )
    rows = (await session.execute(due)).all()
    for seller_id, interval in rows:
        await session.execute(
            update(Seller)
            .where(Seller.id == seller_id)
            .values(next_sync_at=now + timedelta(minutes=interval))
        )
        await request_runs(session, seller_id, CHANNELS, trigger="beat")
    return len(rows)


async def orphaned_runs(session: AsyncSession, redis: Redis, *, now: datetime) -> list[int]:
    """Runs whose worker died: `running` with nobody holding their lock, or `queued` for long."""
    result = await session.execute(
        select(SyncRun.id, SyncRun.seller_id, SyncRun.channel, SyncRun.status, SyncRun.created_at)
        .where(SyncRun.status.in_(("queued", "running")))
        .order_by(SyncRun.id)
        .limit(1000)
    )
    orphans = []
    for run_id, seller_id, channel, status, created_at in result:
        if status == "queued" and created_at > now - timedelta(minutes=10):
            continue
        holder = await locks.owner_of(redis, lock_key(seller_id, channel))
        if holder is None:
            orphans.append(run_id)
    return orphans


# --- executing a run ---------------------------------------------------------------------


async def execute_run(deps: SyncDeps, run_id: int) -> str:
    """Run (or resume) one sync run; idempotent. Returns the run's status afterwards."""
    async with transaction(deps.sessionmaker) as session:
        run = await session.get(SyncRun, run_id)
        if run is None or run.status in FINAL_STATUSES:
            return run.status if run else "missing"
        seller_id, channel, full = run.seller_id, run.channel, run.full_resync

    key, owner = lock_key(seller_id, channel), f"{run_id}:{uuid.uuid4().hex}"
    ttl = deps.settings.sync_lock_ttl_seconds
    if not await locks.acquire(deps.redis, key, owner, ttl):
        holder = await locks.owner_of(deps.redis, key) or ""
        if holder.split(":")[0] == str(run_id):
            return "running"  # another delivery of this same run is alive and working
        await _finish(deps, run_id, seller_id, "skipped", f"another sync is running ({holder})")
        return "skipped"

    async with locks.keep_alive(deps.redis, key, owner, ttl):
        await _start(deps, run_id, seller_id)
        try:
            await _sync(deps, run_id, seller_id, channel, full)
        except (ConnectorError, ValueError) as exc:
            status = "failed"
            logger.warning("sync run %s failed: %s", run_id, exc)
            await _finish(deps, run_id, seller_id, status, str(exc)[:2000], auth=_is_auth(exc))
            return status
        except Exception as exc:
            logger.exception("sync run %s crashed", run_id)
            await _finish(deps, run_id, seller_id, "failed", f"internal error: {exc!r}"[:2000])
            return "failed"
        await _finish(deps, run_id, seller_id, "succeeded", None)
        return "succeeded"


def _is_auth(exc: Exception) -> bool:
    return isinstance(exc, AuthError | NoAccount)


async def _sync(deps: SyncDeps, run_id: int, seller_id: int, channel: str, full: bool) -> None:
    async with transaction(deps.sessionmaker) as session:
        ctx, token, limits = await seller_setup(session, deps.settings, seller_id)
    client = WildberriesClient(
        token=token,
        seller_id=seller_id,
        limiter=RateLimiter(deps.redis),
        feedbacks_url=deps.settings.wb_feedbacks_base_url,
        chat_url=deps.settings.wb_buyer_chat_base_url,
        policy=EgressPolicy.from_settings(deps.settings),
        limits=limits,
        transport=deps.transport,
    )
    job = channels.RunContext(deps.sessionmaker, client, ctx, run_id, channel, full)
    async with client:
        if channel == "chat":
            await channels.sync_chats(job)
        else:
            await channels.sync_list(job)


async def seller_setup(
    session: AsyncSession, settings: Settings, seller_id: int
) -> tuple[SellerContext, str, dict[str, Limit]]:
    account = (
        await session.execute(
            select(MarketplaceAccount).where(
                MarketplaceAccount.seller_id == seller_id,
                MarketplaceAccount.marketplace == "wildberries",
                MarketplaceAccount.is_active,
            )
        )
    ).scalar_one_or_none()
    if account is None:
        raise NoAccount("no active Wildberries account is connected")
    prefs = await session.get(SellerSettings, seller_id)
    token = SecretBox(settings.secrets_key.get_secret_value()).decrypt(account.token_encrypted)
    limits = {
        category: Limit(rate=float(v["rate"]), burst=int(v["burst"]))
        for category, v in (prefs.rate_limits if prefs else {}).items()
        if isinstance(v, dict) and "rate" in v and "burst" in v
    }
    ctx = SellerContext(seller_id=seller_id, sla_targets=prefs.sla_targets if prefs else {})
    return ctx, token, limits


async def _start(deps: SyncDeps, run_id: int, seller_id: int) -> None:
    async with transaction(deps.sessionmaker) as session:
        await session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(status="running", started_at=func.coalesce(SyncRun.started_at, func.now()))
        )
        await session.execute(
            update(Seller).where(Seller.id == seller_id).values(sync_status="running")
        )


async def _finish(
    deps: SyncDeps, run_id: int, seller_id: int, status: str, error: str | None, auth: bool = False
) -> None:
    async with transaction(deps.sessionmaker) as session:
        run = await session.get(SyncRun, run_id)
        assert run is not None
        if status == "failed" and run.fetched > 0:
            status = "partial"  # what it read before failing is kept
        run.status, run.error, run.finished_at = status, error, datetime.now(UTC)
        if status == "skipped":
            return
        values: dict[str, Any] = {
            "sync_status": "ok" if status == "succeeded" else "error",
            "sync_error": None if status == "succeeded" else f"{run.channel}: {error}",
        }
        if status == "succeeded":
            values["last_sync_at"] = func.now()
        await session.execute(update(Seller).where(Seller.id == seller_id).values(values))
        if auth or status == "succeeded":  # a refused token, or one that works again
            await session.execute(
                update(MarketplaceAccount)
                .where(
                    MarketplaceAccount.seller_id == seller_id,
                    MarketplaceAccount.last_error.is_distinct_from(error),
                )
                .values(last_error=error)
            )


async def run_stats(session: AsyncSession, run_id: int) -> SyncRun | None:
    return await repository.get_run(session, run_id)
