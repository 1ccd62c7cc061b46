"""Sync runs: created by the beat tick or "sync now", executed by `sync.run` tasks.

A run covers one seller+channel. It holds a Redis lock (one sync per seller+channel), reads the
marketplace page by page and commits each page together with the cursor that covers it, so a
crash loses nothing and a rerun re-reads at most one page (deduplicated by identity).
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import httpx
from pydantic import TypeAdapter
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connectors import registry
from app.connectors.base import AuthError, Channel, ConnectorError, Environment
from app.core import locks
from app.core.config import Settings, get_settings
from app.core.db import transaction
from app.core.pagination import decode_cursor, encode_cursor
from app.core.schemas import Id
from app.core.security import SecretBox
from app.sellers import reauth
from app.sellers import service as sellers_service
from app.sellers.exceptions import AccountPaused
from app.sellers.models import MarketplaceAccount, Seller
from app.sync import channels, repository
from app.sync.models import FINAL_RUN_STATUSES, SyncGap, SyncRun
from app.sync.normalize import SellerContext
from app.worker import enqueue, names

logger = logging.getLogger(__name__)

CHANNELS: tuple[Channel, ...] = get_args(Channel)
MARKETPLACE = registry.DEFAULT_MARKETPLACE
RESUMED_NOTE = "resumed: the worker running it was lost"
RUNS_CURSOR = TypeAdapter(tuple[Id])


def lock_key(seller_id: int, channel: str) -> str:
    return locks.sync_key(seller_id, channel)


@dataclass
class SyncDeps:
    """What executing a run needs; tests pass their own (e.g. a sandbox transport)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    settings: Settings
    transport: httpx.AsyncBaseTransport | None = None
    marketplace_url: str | None = None  # every marketplace endpoint here (`Environment.base_url`)


# --- creating runs -----------------------------------------------------------------------


async def active_runs(session: AsyncSession, seller_id: int) -> dict[str, SyncRun]:
    """Channel → the seller's queued or running run of it (the newest, should there be two)."""
    return {run.channel: run for run in await repository.active_runs(session, seller_id)}


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
    active = await active_runs(session, seller_id)
    idle = tuple(c for c in channels_ if c not in active)
    runs = await _queue(session, seller_id, idle, trigger=trigger, full_resync=full_resync)
    return runs, {c: active[c].id for c in channels_ if c in active}


async def start_now(
    session: AsyncSession,
    redis: Redis,
    seller_id: int,
    channels_: tuple[str, ...],
    *,
    full_resync: bool = False,
    now: datetime | None = None,
) -> tuple[list[SyncRun], dict[str, int]]:
    """Sync now: like `request_runs`, but a run that is stuck is taken up again and reported as
    started, never as running: `running` with nobody holding its lock (its worker died), or
    `queued` with no task taking it up since `sync_republish_after_seconds`. (A stuck run keeps
    what it was asked: an incremental run stays incremental under a full_resync request.)"""
    now = now or datetime.now(UTC)
    active = await active_runs(session, seller_id)
    started: list[SyncRun] = []
    running: dict[str, int] = {}
    for run in await stuck(redis, [active[c] for c in channels_ if c in active], now=now):
        if await _take_up(session, run, now):
            enqueue.defer(session, names.SYNC_RUN, run.id)
            started.append(run)
    for channel in channels_:
        if channel in active and active[channel] not in started:
            running[channel] = active[channel].id
    idle = tuple(c for c in channels_ if c not in active)
    started += await _queue(session, seller_id, idle, trigger="manual", full_resync=full_resync)
    return started, running


async def _queue(
    session: AsyncSession,
    seller_id: int,
    channels_: tuple[str, ...],
    *,
    trigger: str,
    full_resync: bool,
) -> list[SyncRun]:
    runs = repository.new_runs(
        session,
        seller_id,
        channels_,
        marketplace=MARKETPLACE,
        trigger=trigger,
        full_resync=full_resync,
        published_at=datetime.now(UTC),
    )
    await session.flush()
    for run in runs:
        enqueue.defer(session, names.SYNC_RUN, run.id)
    return runs


async def fan_out_due(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """Beat tick: queue runs for the sellers whose next sync is due, and schedule the next one.

    Only due sellers are read (indexed `next_sync_at`); SKIP LOCKED lets ticks overlap safely.
    An account that needs re-authorisation is not synced (its next sync waits for it).
    """
    due = await sellers_service.claim_due_syncs(session, MARKETPLACE, now=now, limit=limit)
    for seller_id in due:
        await request_runs(session, seller_id, CHANNELS, trigger="beat")
    return len(due)


async def orphaned_runs(
    session: AsyncSession,
    redis: Redis,
    *,
    now: datetime,
    republish_after: timedelta | None = None,
    limit: int = 1000,
) -> list[int]:
    """The tick's half of "no stuck runs": every stuck run (see `stuck`) is marked (`queued`
    again, a new publish time, a resumed worker-less run counted in `resumes`) and returned
    for the caller to publish after commit."""
    candidates = await repository.unfinished_runs(
        session, published_before=now - _republish_after(republish_after), limit=limit
    )
    taken = []
    for run in await stuck(redis, candidates, now=now, republish_after=republish_after):
        if await _take_up(session, run, now):
            taken.append(run.id)
    return taken


async def stuck(
    redis: Redis,
    runs: list[SyncRun],
    *,
    now: datetime,
    republish_after: timedelta | None = None,
) -> list[SyncRun]:
    """The runs nobody works on: no one holds their seller+channel lock (a live worker renews
    it every third of its TTL), and either `running` (the worker died, or lost its lock) or
    `queued` with no task taking them up since `republish_after` (a task lost with the broker).
    """
    if not runs:
        return []
    holders = await redis.mget([lock_key(run.seller_id, run.channel) for run in runs])
    published_before = now - _republish_after(republish_after)
    return [
        run
        for run, holder in zip(runs, holders, strict=True)
        if holder is None
        and (run.status == "running" or (run.published_at or run.created_at) <= published_before)
    ]


def _republish_after(value: timedelta | None) -> timedelta:
    return value or timedelta(seconds=get_settings().sync_republish_after_seconds)


async def _take_up(session: AsyncSession, run: SyncRun, now: datetime) -> bool:
    """Queue a stuck run again (the caller publishes its task); False if it moved meanwhile."""
    was_running = run.status == "running"
    taken = await repository.requeue_run(
        session, run.id, from_status=run.status, now=now, note=RESUMED_NOTE if was_running else None
    )
    if taken is not None and was_running:
        logger.warning("sync run %s lost its worker; resumed (%s times)", run.id, taken.resumes)
    return taken is not None


# --- executing a run ---------------------------------------------------------------------


async def execute_run(deps: SyncDeps, run_id: int) -> str:
    """Run (or resume) one sync run; idempotent. Returns the run's status afterwards."""
    async with transaction(deps.sessionmaker) as session:
        run = await repository.get_run(session, run_id)
        if run is None or run.status in FINAL_RUN_STATUSES:
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

    try:
        async with locks.keep_alive(deps.redis, key, owner, ttl, stop_on_loss=True):
            return await _run_locked(deps, run_id, seller_id, channel, full)
    except locks.LockLost:
        # Stalled past the TTL: whoever took the lock over, or the tick, carries the run on.
        logger.error("sync run %s lost its lock and stopped", run_id)
        return "running"


async def _run_locked(deps: SyncDeps, run_id: int, seller_id: int, channel: str, full: bool) -> str:
    token_read_at = datetime.now(UTC)  # a refusal is judged against the token read after this
    await _start(deps, run_id, seller_id)
    try:
        await _sync(deps, run_id, seller_id, channel, full)
    except AccountPaused as exc:  # paused after the run was queued: no call with that token
        return await _finish(deps, run_id, seller_id, "skipped", str(exc), paused=True)
    except (ConnectorError, ValueError) as exc:
        logger.warning("sync run %s failed: %s", run_id, exc)
        refused = (exc, token_read_at) if isinstance(exc, AuthError) else None
        return await _finish(deps, run_id, seller_id, "failed", str(exc)[:2000], refused)
    except Exception as exc:
        logger.exception("sync run %s crashed", run_id)
        return await _finish(deps, run_id, seller_id, "failed", f"internal error: {exc!r}"[:2000])
    return await _finish(deps, run_id, seller_id, "succeeded", None)


async def _sync(deps: SyncDeps, run_id: int, seller_id: int, channel: str, full: bool) -> None:
    async with transaction(deps.sessionmaker) as session:
        run = await repository.get_run(session, run_id)
        marketplace = run.marketplace if run else MARKETPLACE
        box = SecretBox(deps.settings.secrets_key.get_secret_value())
        access = await sellers_service.marketplace_access(session, box, seller_id, marketplace)
        prefs = await sellers_service.find_settings(session, seller_id)
    ctx = SellerContext(seller_id=seller_id, sla_targets=prefs.sla_targets if prefs else {})
    connector = registry.get(marketplace)
    env = Environment.of(deps.settings, deps.transport, deps.marketplace_url)
    client = sellers_service.connect(access, redis=deps.redis, env=env)
    job = channels.RunContext(deps.sessionmaker, connector, client, ctx, run_id, channel, full)
    async with client:
        if channel == "chat":
            await channels.sync_chats(job)
        else:
            await channels.sync_list(job)


async def _start(deps: SyncDeps, run_id: int, seller_id: int) -> None:
    async with transaction(deps.sessionmaker) as session:
        await repository.mark_started(session, run_id)
        await sellers_service.sync_started(session, seller_id)


async def _finish(
    deps: SyncDeps,
    run_id: int,
    seller_id: int,
    status: str,
    error: str | None,
    refused: tuple[AuthError, datetime] | None = None,
    *,
    paused: bool = False,
) -> str:
    """Record the run's end and the seller's sync state (a run skipped for another one leaves
    it alone; one skipped for a paused account says so); a refused token pauses the account."""
    async with transaction(deps.sessionmaker) as session:
        run = await repository.get_run(session, run_id)
        assert run is not None
        if status == "failed" and run.fetched > 0:
            status = "partial"  # what it read before failing is kept
        run.status, run.error, run.finished_at = status, error, datetime.now(UTC)
        if status == "skipped" and not paused:
            return status
        await sellers_service.sync_ended(
            session, seller_id, error=None if status == "succeeded" else f"{run.channel}: {error}"
        )
        if refused is not None:
            exc, token_read_at = refused
            refusal = await sellers_service.mark_needs_reauth(
                session,
                seller_id=seller_id,
                marketplace=MARKETPLACE,
                reason=sellers_service.refusal_reason(exc, f"a {run.channel} sync"),
                source="sync",
                token_read_at=token_read_at,
                payload={"run_id": run_id, "channel": run.channel},
            )
            if refusal == "stale":  # the token was fixed while this run used the old one
                await session.flush()
                await request_runs(session, seller_id, (run.channel,), trigger="manual")
    return status


async def run_stats(session: AsyncSession, run_id: int) -> SyncRun | None:
    return await repository.get_run(session, run_id)


# --- items written outside a run (the demo's seed) -----------------------------------------


async def upsert_interactions(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, chat: bool = False
) -> repository.Upserted:
    """Normalized items written as a sync writes them (new ones inserted, known ones refreshed)."""
    return await repository.upsert_interactions(session, rows, chat=chat)


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Chat messages written as a sync writes them (known ones skipped); how many were new."""
    return await repository.insert_messages(session, rows)


# --- what the API shows ------------------------------------------------------------------


async def list_runs(
    session: AsyncSession,
    seller_id: int,
    *,
    limit: int,
    cursor: str | None = None,
    channel: str | None = None,
) -> tuple[list[SyncRun], str | None]:
    """A page of the seller's runs, newest first, and the cursor of the next page (if any)."""
    before_id = decode_cursor(cursor, RUNS_CURSOR)[0] if cursor else None
    rows = await repository.list_runs(
        session, seller_id, channel=channel, before_id=before_id, limit=limit + 1
    )
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return rows[:limit], next_cursor


@dataclass
class Status:
    """A seller's sync state: its own, its account's, each channel's, and the open gaps."""

    seller: Seller
    account: MarketplaceAccount | None
    cursors: dict[str, dict[str, Any]]
    last_runs: dict[str, SyncRun]
    gaps: list[SyncGap]


async def status(session: AsyncSession, seller_id: int) -> Status:
    seller = await sellers_service.get_seller(session, seller_id)
    return Status(
        seller=seller,
        account=await sellers_service.account_for(session, seller.id, MARKETPLACE),
        cursors=await repository.cursor_states(session, seller.id, CHANNELS),
        last_runs=await repository.last_runs(session, seller.id, CHANNELS),
        gaps=await repository.open_gaps(session, seller.id),
    )


@reauth.on_resume
async def _sync_resumed_account(session: AsyncSession, account: MarketplaceAccount) -> None:
    """An account works again: a sync of every channel catches up on what waited."""
    if account.marketplace == MARKETPLACE:
        await request_runs(session, account.seller_id, CHANNELS, trigger="manual")
