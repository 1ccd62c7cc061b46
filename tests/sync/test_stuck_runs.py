"""No stuck runs: a run whose worker died is taken up again, by sync-now at once and by the tick,
and a queued run whose task was lost is published again; live runs are left alone."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core import locks
from app.core.config import Settings
from app.sellers.models import Seller
from app.sync import service
from app.sync.models import SyncRun
from tests import factories
from tests.sync import sandbox
from tests.sync.sandbox import SandboxSync, published_to_test_redis  # noqa: F401

pytestmark = pytest.mark.usefixtures("published_to_test_redis")


def _run(seller: Seller, channel: str, status: str, **fields: object) -> SyncRun:
    return SyncRun(
        seller_id=seller.id, marketplace="wildberries", channel=channel, trigger="beat",
        status=status, **fields,
    )  # fmt: skip


async def test_sync_now_takes_up_a_run_whose_worker_died_and_reports_live_ones(
    session: AsyncSession, client: AsyncClient, redis: Redis, settings: Settings
) -> None:
    seller, headers = await factories.operator(session, client, "stuck@example.com")
    await factories.connect_wildberries(session, seller, settings)
    dead = _run(seller, "review", "running", started_at=datetime.now(UTC))
    alive = _run(seller, "question", "running", started_at=datetime.now(UTC))
    queued = _run(seller, "chat", "queued", published_at=datetime.now(UTC))
    session.add_all([dead, alive, queued])
    await session.flush()
    assert await locks.acquire(redis, service.lock_key(seller.id, "question"), f"{alive.id}:w", 15)

    response = await client.post("/api/v1/sync", headers=headers)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["already_running"] == {"question": alive.id, "chat": queued.id}
    [started] = body["runs"]
    assert (started["id"], started["status"], started["resumes"]) == (dead.id, "queued", 1)
    assert started["error"] == service.RESUMED_NOTE
    again = (await client.post("/api/v1/sync", json={"channel": "review"}, headers=headers)).json()
    assert (again["runs"], again["already_running"]) == ([], {"review": dead.id})


async def test_the_tick_takes_up_dead_runs_and_republishes_lost_tasks_once(
    session: AsyncSession, redis: Redis
) -> None:
    now = datetime.now(UTC)
    seller = await factories.create_seller(session, "Tick shop")
    dead = _run(seller, "review", "running")
    alive = _run(seller, "question", "running")
    lost = _run(seller, "chat", "queued", published_at=now - timedelta(minutes=3))
    fresh = _run(await factories.create_seller(session, "Other"), "chat", "queued",
                 published_at=now - timedelta(seconds=30))  # fmt: skip
    session.add_all([dead, alive, lost, fresh])
    await session.flush()
    assert await locks.acquire(redis, service.lock_key(seller.id, "question"), f"{alive.id}:w", 15)

    taken = await service.orphaned_runs(session, redis, now=now)
    again = await service.orphaned_runs(session, redis, now=now + timedelta(seconds=30))

    assert sorted(taken) == sorted([dead.id, lost.id])
    assert again == []
    for run in (dead, lost, alive, fresh):
        await session.refresh(run)
    assert (dead.status, dead.resumes, dead.error) == ("queued", 1, service.RESUMED_NOTE)
    assert (lost.status, lost.resumes, lost.published_at) == ("queued", 0, now)
    assert (alive.status, fresh.status) == ("running", "queued")


@pytest.fixture
async def shop(
    connection: AsyncConnection, session: AsyncSession, redis: Redis, settings: Settings
) -> AsyncIterator[SandboxSync]:
    env = await sandbox.start(
        connection, session, redis, settings, seed=3, reviews=60, questions=10, chats=2
    )
    yield env
    await env.admin.aclose()


async def test_a_run_left_running_by_a_dead_worker_is_resumed_by_the_tick_and_finishes(
    shop: SandboxSync,
) -> None:
    async with shop.deps.sessionmaker() as session:
        (run,), _ = await service.request_runs(
            session, shop.seller_id, ("review",), trigger="manual"
        )
        run.status, run.started_at = "running", datetime.now(UTC)  # its worker died here
        await session.commit()

    async with shop.deps.sessionmaker() as session:
        taken = await service.orphaned_runs(session, shop.deps.redis, now=datetime.now(UTC))
        await session.commit()
    status = await service.execute_run(shop.deps, run.id)

    assert taken == [run.id]
    assert status == "succeeded"
    async with shop.deps.sessionmaker() as session:
        done = await session.get(SyncRun, run.id)
        assert done is not None
        assert (done.resumes, done.error, done.created) == (1, None, 60)


async def test_a_holder_renews_its_lock_and_stops_when_it_is_lost(redis: Redis) -> None:
    key, ttl = "sellerdesk:lock:test:renew", 0.3
    assert await locks.acquire(redis, key, "me", ttl)
    async with locks.keep_alive(redis, key, "me", ttl, stop_on_loss=True):
        await asyncio.sleep(ttl * 2)
        assert await locks.owner_of(redis, key) == "me"  # renewed past its first expiry

    assert await locks.owner_of(redis, key) is None  # released at the end
    assert await locks.acquire(redis, key, "me", ttl)
    with pytest.raises(locks.LockLost):
        await _hold_while_taken_over(redis, key, ttl)
    assert await locks.owner_of(redis, key) == "someone else"


async def _hold_while_taken_over(redis: Redis, key: str, ttl: float) -> None:
    async with locks.keep_alive(redis, key, "me", ttl, stop_on_loss=True):
        await redis.set(key, "someone else")  # as after an expiry and a takeover
        await asyncio.sleep(ttl * 3)  # cancelled at the next renewal


async def test_runs_are_only_read_for_their_seller(session: AsyncSession) -> None:
    mine = await factories.create_seller(session, "Mine")
    other = await factories.create_seller(session, "Other")
    session.add_all([_run(mine, "review", "queued"), _run(other, "chat", "running")])
    await session.flush()

    active = await service.active_runs(session, mine.id)

    assert list(active) == ["review"]
