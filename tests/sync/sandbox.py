"""Sync against the marketplace sandbox, in process: the sandbox ASGI app is the connector's
transport, and the sync writes through the test's rolled-back connection."""

from dataclasses import dataclass
from typing import Any

import pytest
from celery import Celery
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.security import SecretBox
from app.interactions.models import ChatMessage, Interaction
from app.sandbox.app import create_sandbox_app
from app.sandbox.config import SandboxConfig
from app.sellers import service as sellers_service
from app.sync import service
from app.sync.models import SyncRun
from tests import factories

SANDBOX_URL = "http://sandbox"


@pytest.fixture
def published_to_test_redis(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Celery:
    """Tasks published after a commit go to the test Redis, whatever broker the app's Celery
    read when it was first imported (import this fixture into a test module to use it)."""
    import app.worker.celery_app

    celery = Celery(broker=settings.require_redis_url())
    monkeypatch.setattr(app.worker.celery_app, "celery_app", celery)
    return celery


@dataclass
class SandboxSync:
    admin: AsyncClient  # the sandbox's own control API, and the marketplace API with `token`
    deps: service.SyncDeps
    seller_id: int  # ours
    sandbox_id: str  # the sandbox's
    token: str

    async def sync(self, channel: str, *, full: bool = False) -> SyncRun:
        async with self.deps.sessionmaker() as session:
            (run,), _ = await service.request_runs(
                session, self.seller_id, (channel,), trigger="manual", full_resync=full
            )
            await session.commit()
        await service.execute_run(self.deps, run.id)
        async with self.deps.sessionmaker() as session:
            done = await session.get(SyncRun, run.id)
            assert done is not None
            return done

    async def sandbox_state(self) -> dict[str, Any]:
        response = await self.admin.get(f"/_sandbox/sellers/{self.sandbox_id}")
        return dict(response.json())

    async def count(self, channel: str, **filters: Any) -> int:
        stmt = (
            select(func.count())
            .select_from(Interaction)
            .where(Interaction.seller_id == self.seller_id, Interaction.channel == channel)
        )
        for name, value in filters.items():
            stmt = stmt.where(getattr(Interaction, name) == value)
        async with self.deps.sessionmaker() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def messages(self) -> int:
        async with self.deps.sessionmaker() as session:
            stmt = select(func.count()).where(ChatMessage.seller_id == self.seller_id)
            return int((await session.execute(stmt)).scalar_one())


async def start(
    connection: AsyncConnection,
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    config: SandboxConfig | None = None,
    **seller: Any,
) -> SandboxSync:
    sandbox = create_sandbox_app(config)
    transport = ASGITransport(app=sandbox)
    admin = AsyncClient(transport=transport, base_url=SANDBOX_URL)
    created = (await admin.post("/_sandbox/sellers", json={"name": "shop", **seller})).json()
    ours = await factories.create_seller(session, "Shop")
    box = SecretBox(settings.secrets_key.get_secret_value())
    await sellers_service.connect_account(
        session, box, seller_id=ours.id, marketplace="wildberries", name="", token=created["token"]
    )
    await session.commit()
    maker = async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    wired = settings.model_copy(
        update={"wb_feedbacks_base_url": SANDBOX_URL, "wb_buyer_chat_base_url": SANDBOX_URL}
    )
    deps = service.SyncDeps(maker, redis, wired, transport)
    return SandboxSync(admin, deps, ours.id, created["seller_id"], created["token"])
