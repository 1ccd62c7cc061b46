"""Coalesced link recomputation: the backlog committed with the data, one pending task per
seller, drained in transactions that a failure rolls back."""

import base64
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from celery import Celery
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.core import locks
from app.core.config import Settings
from app.links import backlog, service
from app.links.models import link_backlog
from app.sandbox.config import SandboxConfig
from app.sync import service as sync_service
from app.worker import enqueue, lanes
from tests import factories
from tests.links.helpers import backlog_of, make, stored
from tests.sync import sandbox

NM = 777


@pytest.fixture
def broker(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Celery:
    """Tasks go to the test Redis (the app's Celery read REDIS_URL when first imported)."""
    import app.worker.celery_app

    celery = lanes.publisher(settings.require_redis_url())
    monkeypatch.setattr(app.worker.celery_app, "celery_app", celery)
    return celery


@pytest.fixture
def maker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Transactions as the task opens them, each a savepoint of the test's transaction."""
    return async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


async def queued(redis: Redis) -> list[tuple[str, list[object]]]:
    """(task, args) of every message waiting in the background lane."""
    out = []
    for raw in await redis.lrange(lanes.BACKGROUND.name, 0, -1):
        message = json.loads(raw)
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args))
    return out


async def _pending(session: AsyncSession, seller_id: int, *ids: int) -> None:
    await service.add_to_backlog(session, seller_id, list(ids))
    await session.commit()


@pytest.fixture
async def shop(
    connection: AsyncConnection, session: AsyncSession, redis: Redis, settings: Settings
) -> AsyncIterator[sandbox.SandboxSync]:
    env = await sandbox.start(
        connection, session, redis, settings, SandboxConfig(events_page_size=10),
        seed=7, reviews=200, questions=50, chats=30,
    )  # fmt: skip
    yield env
    await env.admin.aclose()


@pytest.mark.slow
async def test_twenty_pages_queue_one_recompute_that_links_every_new_item(
    shop: sandbox.SandboxSync, session: AsyncSession, redis: Redis, broker: Celery
) -> None:
    maker, s = shop.deps.sessionmaker, shop.seller_id
    runs = []
    for channel in ("review", "question", "chat"):
        runs.append(await shop.sync(channel))
        # What `sync.run` does once the run no longer writes (app/sync/tasks.py).
        await backlog.request_if_due(maker, redis, s)
    assert sum(run.requests for run in runs) >= 20
    assert runs[2].requests >= 20  # one page of ten chat events per request
    items = sum(run.created for run in runs)

    assert await queued(redis) == [("links.recompute", [s])]
    assert len(await backlog_of(session, s)) == items == 280
    assert await stored(session, s) == {}

    drained = await backlog.drain(maker, redis, s)

    assert drained.status == "done"
    assert await backlog_of(session, s) == []
    assert await redis.exists(service.marker_key(s)) == 0
    assert await queued(redis) == [("links.recompute", [s])]  # nothing more to do, no new task
    links = {k: (v.confidence, v.band) for k, v in (await stored(session, s)).items()}
    assert links
    # Every new item was scored against all the others: the same as a full rebuild.
    await service.recompute_seller(session, s)
    rebuilt = {k: (v.confidence, v.band) for k, v in (await stored(session, s)).items()}
    assert links == rebuilt


async def test_requests_coalesce_to_one_pending_task_per_seller(
    session: AsyncSession, maker: async_sessionmaker[AsyncSession], redis: Redis, broker: Celery
) -> None:
    one, two = await factories.create_seller(session), await factories.create_seller(session)
    a = await make(session, one.id, "chat", nm_id=NM)
    b = await make(session, one.id, "review", hours=1, nm_id=NM)
    c = await make(session, two.id, "chat")
    await _pending(session, one.id, a.id)
    await _pending(session, two.id, c.id)

    assert await service.request_now(one.id)
    assert not await service.request_now(one.id)
    await _pending(session, one.id, b.id)  # arrives while the task waits: the same task covers it
    assert not await service.request_now(one.id)
    assert await service.request_now(two.id)
    assert await queued(redis) == [("links.recompute", [two.id]), ("links.recompute", [one.id])]

    assert (await backlog.drain(maker, redis, one.id)).status == "done"

    assert await backlog_of(session, one.id) == []
    assert set(await stored(session, one.id)) == {(a.id, b.id), (b.id, a.id)}
    assert await service.request_now(one.id)  # no task pending any more: the next one may go


async def test_a_drain_rolled_back_midway_leaves_its_backlog_for_the_next_one(
    session: AsyncSession,
    connection: AsyncConnection,
    engine: AsyncEngine,
    maker: async_sessionmaker[AsyncSession],
    redis: Redis,
    broker: Celery,
) -> None:
    seller = await factories.create_seller(session)
    a = await make(session, seller.id, "chat", nm_id=NM)
    b = await make(session, seller.id, "review", hours=1, nm_id=NM)
    await _pending(session, seller.id, a.id, b.id)
    assert await service.request_now(seller.id)

    # The link write cannot get its lock and fails after taking the backlog rows, as a worker
    # killed there would: its transaction is rolled back.
    async with engine.connect() as other:
        await other.begin()
        await other.exec_driver_sql("LOCK TABLE link_candidates IN ACCESS EXCLUSIVE MODE")
        await connection.exec_driver_sql("SET LOCAL lock_timeout = '300ms'")
        with pytest.raises(DBAPIError, match="lock"):
            await backlog.drain(maker, redis, seller.id)
        await other.rollback()
    await connection.exec_driver_sql("SET LOCAL lock_timeout = 0")

    assert await backlog_of(session, seller.id) == [a.id, b.id]
    assert await stored(session, seller.id) == {}
    # The marker outlives the failure only briefly: then the control tick asks again.
    assert 0 < await redis.ttl(service.marker_key(seller.id)) <= backlog.ERROR_BACKOFF_SECONDS

    assert (await backlog.drain(maker, redis, seller.id)).status == "done"
    assert await backlog_of(session, seller.id) == []
    assert set(await stored(session, seller.id)) == {(a.id, b.id), (b.id, a.id)}


async def test_links_wait_for_the_sellers_sync_without_retries(
    session: AsyncSession, maker: async_sessionmaker[AsyncSession], redis: Redis, broker: Celery
) -> None:
    seller = await factories.create_seller(session)
    a = await make(session, seller.id, "chat", nm_id=NM)
    b = await make(session, seller.id, "review", hours=1, nm_id=NM)
    await _pending(session, seller.id, a.id, b.id)
    sync_lock = sync_service.lock_key(seller.id, "review")
    await locks.acquire(redis, sync_lock, "run 1", 30)

    assert not await backlog.request_if_due(maker, redis, seller.id)
    assert await service.request_now(seller.id)  # say, another channel's run ended
    assert (await backlog.drain(maker, redis, seller.id)).status == "waiting_for_sync"

    assert await backlog_of(session, seller.id) == [a.id, b.id]
    assert len(await queued(redis)) == 1  # no retry: the running sync's end asks again
    assert await redis.exists(service.marker_key(seller.id)) == 0

    await locks.release(redis, sync_lock, "run 1")
    assert await backlog.request_if_due(maker, redis, seller.id)
    assert len(await queued(redis)) == 2


async def test_a_seller_that_never_stops_syncing_gets_its_links_after_the_wait_limit(
    session: AsyncSession, maker: async_sessionmaker[AsyncSession], redis: Redis, broker: Celery
) -> None:
    seller = await factories.create_seller(session)
    a = await make(session, seller.id, "chat", nm_id=NM)
    b = await make(session, seller.id, "review", hours=1, nm_id=NM)
    await _pending(session, seller.id, a.id, b.id)
    await locks.acquire(redis, sync_service.lock_key(seller.id, "chat"), "run 2", 30)
    long_ago = backlog.SYNC_WAIT_LIMIT + timedelta(seconds=1)
    await session.execute(
        update(link_backlog)
        .where(link_backlog.c.seller_id == seller.id)
        .values(queued_at=link_backlog.c.queued_at - long_ago)
    )

    assert (await backlog.drain(maker, redis, seller.id)).status == "done"
    assert set(await stored(session, seller.id)) == {(a.id, b.id), (b.id, a.id)}


async def test_the_control_tick_asks_for_backlogs_nobody_asked_for(
    session: AsyncSession, redis: Redis
) -> None:
    lost, pending, syncing = [await factories.create_seller(session) for _ in range(3)]
    for seller in (lost, pending, syncing):
        item = await make(session, seller.id, "chat")
        await _pending(session, seller.id, item.id)
    await redis.set(service.marker_key(pending.id), "1")
    await locks.acquire(redis, sync_service.lock_key(syncing.id, "review"), "run 3", 30)

    assert await backlog.request_overdue(session, redis) == [lost.id]

    assert [args for _, _, _, args in session.info[enqueue.AFTER_COMMIT_ONCE]] == [(lost.id,)]
    enqueue.drop_deferred(session)


async def test_a_whole_seller_request_rebuilds_everything_once(
    session: AsyncSession, maker: async_sessionmaker[AsyncSession], redis: Redis, broker: Celery
) -> None:
    seller = await factories.create_seller(session)
    a = await make(session, seller.id, "chat", order_id="o-1")
    b = await make(session, seller.id, "review", hours=500, order_id="o-1")
    await service.request_recompute(session, seller.id, [a.id])
    await service.request_recompute(session, seller.id, None)
    await service.request_recompute(session, seller.id, None)
    await session.commit()

    assert await backlog_of(session, seller.id) == [a.id, None]
    drained = await backlog.drain(maker, redis, seller.id)

    assert (drained.status, drained.written) == ("done", 2)
    assert set(await stored(session, seller.id)) == {(a.id, b.id), (b.id, a.id)}
    assert await backlog_of(session, seller.id) == []
