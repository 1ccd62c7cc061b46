import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core import security
from app.core.config import Settings, get_settings
from app.core.db import Database, create_engine
from app.core.egress import EgressPolicy
from app.core.redis import create_redis
from app.main import create_app
from tests import egress
from tests.marketplace import SANDBOX_URL, Marketplace, wire
from tests.services import Services, alembic, database_name, recreate_database, start_services


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2id at its lowest cost in this process: the same code and hash format, a millisecond
    a hash instead of 0.2-0.5 s on two shared cores, where a hundred tests create and log in
    operators. Processes the tests start (workers, servers) keep the production cost."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "_hasher", hasher)
        patch.setattr(security, "_DUMMY_HASH", hasher.hash("unknown e-mail"))
        yield


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    services = start_services()
    yield services
    services.stop()


@pytest.fixture(scope="session")
def settings(services: Services) -> Iterator[Settings]:
    database_url = recreate_database(services, database_name())
    alembic(database_url, "upgrade", "head")
    # Code that reads the environment (Celery tasks, the CLI) sees the same servers.
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "ENV")}
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=services.redis_url, ENV="test")
    get_settings.cache_clear()
    yield Settings(
        env="test",
        database_url=database_url,
        redis_url=services.redis_url,
        secrets_key=Fernet.generate_key().decode(),
        jwt_secret="test-jwt-secret-with-enough-entropy-0123456789",
        heartbeat_max_age_seconds=60,
        # The in-process sandbox (tests/marketplace.py, tests/sync/sandbox.py), as `make run`
        # allows its sandbox.
        egress_allow_marketplace=[SANDBOX_URL],
    )
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Each test runs inside one outer transaction that is rolled back at the end."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        yield conn
        await transaction.rollback()


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    # Commits inside the code under test release savepoints; the outer rollback undoes all.
    async with AsyncSession(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    ) as session:
        yield session


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = create_redis(settings.require_redis_url())
    await client.flushdb()
    yield client
    await client.aclose()


class InTestTransaction(Database):
    """The API's database inside the test's transaction: each request's transaction is a
    savepoint of the test session (a failed request undoes only its own writes, as its own
    transaction would, not the test's setup), and reads see what the test wrote."""

    def __init__(self, session: AsyncSession, connection: AsyncConnection) -> None:
        super().__init__(connection.engine)
        self.session, self.connection = session, connection

    @asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[AsyncSession]:
        request_tx = await self.session.begin_nested()
        try:
            yield self.session
            await request_tx.commit()
        except BaseException:
            await request_tx.rollback()
            raise

    def transaction(self, *, read_only: bool = False) -> AbstractAsyncContextManager[AsyncSession]:
        return self._savepoint()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        await self.session.flush()
        yield self.connection

    def reader(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._connection()


@pytest.fixture
async def app(
    settings: Settings, session: AsyncSession, connection: AsyncConnection, redis: Redis
) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.database = InTestTransaction(session, connection)
        app.state.egress = EgressPolicy.from_settings(settings, egress.FakeDns(egress.MARKETPLACE))
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def marketplace(app: FastAPI, settings: Settings) -> AsyncIterator[Marketplace]:
    """The in-process sandbox as the marketplace the API checks tokens against."""
    from app.sandbox.app import create_sandbox_app

    transport = ASGITransport(app=create_sandbox_app())
    app.state.marketplace_transport = transport
    wire(app, settings, SANDBOX_URL)
    async with AsyncClient(transport=transport, base_url=SANDBOX_URL) as admin:
        yield Marketplace(admin)
