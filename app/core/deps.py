"""Request-scoped resources: the session (one transaction per request), a read-only connection
for the hot inbox reads, and shared clients.

Dependencies are `async def` even when they do not await: FastAPI runs a plain `def` one in its
thread pool, a thread hop per request for reading app.state."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.db import Database
from app.core.egress import EgressPolicy


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


async def get_egress(request: Request) -> EgressPolicy:
    egress: EgressPolicy = request.app.state.egress
    return egress


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    # scope="function" below: the commit happens before the response is sent, so a failed
    # commit reaches the client as an error instead of a silent 200.
    database: Database = request.app.state.database
    async with database.transaction(read_only=request.method in READ_METHODS) as session:
        yield session


async def get_read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """For endpoints that only read, with Core statements: no ORM session to build and commit
    (≈ 0.4 ms of CPU a request)."""
    database: Database = request.app.state.database
    async with database.reader() as connection:
        yield connection


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
RedisDep = Annotated[Redis, Depends(get_redis)]
EgressDep = Annotated[EgressPolicy, Depends(get_egress)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadConnection = Annotated[AsyncConnection, Depends(get_read_connection, scope="function")]
