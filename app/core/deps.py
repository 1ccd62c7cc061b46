"""Request-scoped resources: the session (one transaction per request) and shared clients.

Dependencies are `async def` even when they do not await: FastAPI runs a plain `def` one in its
thread pool, a thread hop per request for reading app.state."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import Settings
from app.core.db import transaction


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    # scope="function" below: the commit happens before the response is sent, so a failed
    # commit reaches the client as an error instead of a silent 200.
    state = request.app.state
    maker = state.read_sessionmaker if request.method in READ_METHODS else state.sessionmaker
    async with transaction(maker) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
RedisDep = Annotated[Redis, Depends(get_redis)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
