"""No deadlock between an operator's bulk work and background work on the same interactions.

Operators lock interactions in id order with FOR NO KEY UPDATE (bulk replies lock every item up
front, bulk triage in one sorted statement); a sync page locks its stored rows in id order before
its upsert; a link recompute's inserts only take FOR KEY SHARE on them, which conflicts with
neither. Shuffled bulk replies and triage run against full re-syncs and link recomputes of the
same items, on real Postgres with real commits, and the database's deadlock counter must not move.

The safety net is shown too: a request that does lose a real deadlock is run again and succeeds.
"""

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from celery import Celery
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import app.worker.celery_app
from app.connectors.wildberries.limits import FEEDBACKS
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, transaction
from app.core.redis import create_redis
from app.core.security import SecretBox
from app.dispatch.models import OutboundReply
from app.interactions.models import Interaction
from app.links import service as links_service
from app.sandbox.app import create_sandbox_app
from app.sellers import service as sellers_service
from app.sellers.models import SellerSettings
from app.sync import service as sync_service
from app.sync.models import SyncRun
from tests import factories
from tests.committed import own_database, running_app
from tests.services import Services, database_name
from tests.sync.sandbox import SANDBOX_URL

pytestmark = pytest.mark.multiprocess

EMAIL = "locks@example.com"
TEXT = "Здравствуйте! Спасибо, что написали нам, мы всё проверили."
CONTENTION_SECONDS = 6.0
# Lock waits on a busy test machine may take seconds: here a 503 for a slow answer would hide
# what is looked for (a 500, a deadlock).
REQUEST_TIMEOUT_SECONDS = 60.0


@dataclass
class Stage:
    settings: Settings  # the app's: our database, the in-process sandbox as the marketplace
    engine: AsyncEngine  # the background work's
    sync: sync_service.SyncDeps
    seller_id: int
    ids: list[int]
    admin_url: str
    database: str

    @property
    def maker(self) -> async_sessionmaker[AsyncSession]:
        return self.sync.sessionmaker

    async def resync(self, channel: str) -> str:
        """A full re-read of a channel: its upserts lock every stored row of the channel."""
        async with transaction(self.maker) as session:
            (run,), _ = await sync_service.request_runs(
                session, self.seller_id, (channel,), trigger="manual", full_resync=True
            )
        return await sync_service.execute_run(self.sync, run.id)

    async def admin(self, sql: str) -> None:
        url = make_url(self.admin_url).set(drivername="postgresql").render_as_string(False)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def deadlocks(self) -> int:
        """The database's deadlock counter, once every session of ours has ended (a backend
        reports its counters when it exits, at the latest)."""
        await self.engine.dispose()
        url = make_url(self.admin_url).set(drivername="postgresql").render_as_string(False)
        conn = await asyncpg.connect(url)
        try:
            deadline = time.monotonic() + 10
            while await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", self.database
            ):
                assert time.monotonic() < deadline, "sessions left on the test database"
                await asyncio.sleep(0.1)
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            return int(
                await conn.fetchval(
                    "SELECT deadlocks FROM pg_stat_database WHERE datname = $1", self.database
                )
            )
        finally:
            await conn.close()


@pytest.fixture(scope="module")
async def stage(services: Services, settings: Settings) -> AsyncIterator[Stage]:
    name = database_name("locks")
    # Tasks published after commit (link recomputes, reply sends) go to the test Redis.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            app.worker.celery_app, "celery_app", Celery(broker=settings.require_redis_url())
        )
        async with own_database(services, settings, name) as url:
            ours = settings.model_copy(update={"database_url": url})
            engine = create_engine(ours, pool_size=4)
            redis = create_redis(settings.require_redis_url())
            transport = ASGITransport(app=create_sandbox_app())
            async with AsyncClient(transport=transport, base_url=SANDBOX_URL) as admin:
                seller_id = await _seller(engine, ours, admin)
                deps = sync_service.SyncDeps(
                    create_sessionmaker(engine), redis, ours, transport, SANDBOX_URL
                )
                stage = Stage(ours, engine, deps, seller_id, [], services.admin_url, name)
                for channel in ("review", "question"):
                    assert await _first_sync(stage, channel) == "succeeded"
                async with stage.maker() as session:
                    stage.ids = list(
                        await session.scalars(
                            select(Interaction.id).where(Interaction.seller_id == seller_id)
                        )
                    )
                yield stage
            await redis.aclose()
            await engine.dispose()


async def _seller(engine: AsyncEngine, settings: Settings, admin: AsyncClient) -> int:
    """A sandbox seller (limits off) connected to a seller of ours with an operator."""
    spec = {"name": "locks", "seed": 11, "reviews": 160, "questions": 80, "chats": 0}
    created = (await admin.post("/_sandbox/sellers", json=spec)).json()
    limits = await admin.put(
        f"/_sandbox/sellers/{created['seller_id']}/rate-limits", json={"enabled": False}
    )
    assert limits.status_code == 200, limits.text
    async with transaction(create_sessionmaker(engine)) as session:
        seller = await sellers_service.create_seller(session, "Locks")
        seller.next_sync_at = datetime.now(UTC) + timedelta(days=1)
        await sellers_service.connect_account(
            session, SecretBox(settings.secrets_key.get_secret_value()), seller_id=seller.id,
            marketplace="wildberries", name="", token=created["token"],
        )  # fmt: skip
        prefs = await session.get(SellerSettings, seller.id)
        assert prefs is not None
        prefs.rate_limits = {FEEDBACKS: {"rate": 1000, "burst": 1000}}
        await factories.create_user(session, seller, EMAIL)
    return seller.id


async def _first_sync(stage: Stage, channel: str) -> str:
    async with transaction(stage.maker) as session:
        (run,), _ = await sync_service.request_runs(
            session, stage.seller_id, (channel,), trigger="manual"
        )
    return await sync_service.execute_run(stage.sync, run.id)


async def _until(stop: asyncio.Event, step: Callable[[], Awaitable[Any]]) -> int:
    """Run `step` again and again until `stop`; how many times it ran."""
    rounds = 0
    while not stop.is_set():
        await step()
        rounds += 1
    return rounds


def _lock_conflicts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "lock conflict" in r.getMessage()]


async def test_bulk_work_meets_syncs_and_link_recomputes_without_a_deadlock(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.core.retry")
    before = await stage.deadlocks()
    statuses: Counter[tuple[str, int]] = Counter()
    stop = asyncio.Event()

    async with running_app(stage.settings, request_timeout_seconds=REQUEST_TIMEOUT_SECONDS) as (
        _,
        api,
    ):
        headers = await factories.login(api, EMAIL)

        def bulk_replies(worker: int) -> Callable[[], Awaitable[None]]:
            rng = random.Random(worker)

            async def step() -> None:
                items = [{"interaction_id": i, "text": TEXT} for i in rng.sample(stage.ids, 30)]
                response = await api.post(
                    "/api/v1/replies/bulk", json={"items": items}, headers=headers
                )
                statuses["replies", response.status_code] += 1

            return step

        def bulk_triage(worker: int) -> Callable[[], Awaitable[None]]:
            rng = random.Random(100 + worker)

            async def step() -> None:
                changes = {"is_read": rng.random() < 0.5}
                body = {"ids": rng.sample(stage.ids, 40), "changes": changes}
                response = await api.post("/api/v1/interactions/bulk", json=body, headers=headers)
                statuses["triage", response.status_code] += 1

            return step

        async def resync() -> None:
            for channel in ("review", "question"):
                assert await stage.resync(channel) == "succeeded"

        async def relink() -> None:
            async with transaction(stage.maker) as session:
                await links_service.recompute_for(session, stage.seller_id, stage.ids)

        work = {
            **{f"replies-{n}": bulk_replies(n) for n in range(3)},
            **{f"triage-{n}": bulk_triage(n) for n in range(2)},
            "resync": resync,
            "relink": relink,
        }
        tasks = {name: asyncio.create_task(_until(stop, step)) for name, step in work.items()}
        await asyncio.sleep(CONTENTION_SECONDS)
        stop.set()
        rounds = dict(zip(tasks, await asyncio.gather(*tasks.values()), strict=True))

    assert all(count > 0 for count in rounds.values()), rounds
    assert {status for _, status in statuses} == {200}, statuses
    assert _lock_conflicts(caplog) == []
    assert await stage.deadlocks() - before == 0
    async with stage.maker() as session:  # the replies really were queued
        assert await session.scalar(select(func.count()).select_from(OutboundReply)) > 0
        assert not await session.scalar(
            select(func.count()).where(SyncRun.status != "succeeded", SyncRun.status != "queued")
        )


async def test_a_request_that_loses_a_real_deadlock_is_run_again_and_succeeds(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    """Another transaction holds B; the bulk request locks A and waits for B; the other then
    asks for A. Postgres aborts the request (it waited first, so its check runs first), the
    request is run again once the other has committed, and answers 200 for both items."""
    caplog.set_level(logging.WARNING, logger="app.core.retry")
    async with transaction(stage.maker) as session:
        seller = await sellers_service.get_seller(session, stage.seller_id)
        a, b = [
            (await factories.create_interaction(session, seller, external_id=f"dl-{n}")).id
            for n in (time.time_ns(), time.time_ns() + 1)
        ]
    before = await stage.deadlocks()
    # Postgres looks for a cycle once, deadlock_timeout after a backend starts to wait: the
    # request, waiting first, must find it, so the other side asks for A well within the
    # request's timeout (3 s, for this database's new sessions), and its own check comes later.
    await stage.admin(f"ALTER DATABASE {stage.database} SET deadlock_timeout = '3s'")
    try:
        response = await _deadlocked_bulk_reply(stage, a, b)
    finally:
        await stage.admin(f"ALTER DATABASE {stage.database} RESET deadlock_timeout")

    assert response.status_code == 200, response.text
    assert [item["reply"]["state"] for item in response.json()["items"]] == ["queued"] * 2
    assert len(_lock_conflicts(caplog)) == 1
    assert await stage.deadlocks() - before == 1


async def _deadlocked_bulk_reply(stage: Stage, a: int, b: int) -> Response:
    app = running_app(stage.settings, request_timeout_seconds=REQUEST_TIMEOUT_SECONDS)
    async with app as (_, api), stage.engine.connect() as other:
        headers = await factories.login(api, EMAIL)
        await other.begin()
        await other.execute(text("SET LOCAL deadlock_timeout = '20s'"))
        await _lock(other, b)
        items = [{"interaction_id": i, "text": TEXT} for i in (b, a)]
        request = asyncio.create_task(
            api.post("/api/v1/replies/bulk", json={"items": items}, headers=headers)
        )
        await _until_waiting_for_a_lock(stage)
        await _lock(other, a)  # granted once the request, the deadlock's victim, rolled back
        await other.commit()
        return await request


async def _lock(conn: Any, interaction_id: int) -> None:
    await conn.execute(
        text("SELECT id FROM interactions WHERE id = :id FOR UPDATE"), {"id": interaction_id}
    )


async def _until_waiting_for_a_lock(stage: Stage) -> None:
    async with stage.engine.connect() as conn:
        deadline = time.monotonic() + 10
        while not await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%FOR NO KEY UPDATE%'"
            )
        ):
            assert time.monotonic() < deadline, "the request never waited for the lock"
            await asyncio.sleep(0.05)
