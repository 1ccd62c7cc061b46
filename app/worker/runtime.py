"""Async code inside Celery's prefork workers.

One event loop per worker process, and the engine and Redis client created on that loop at first
use: an AsyncEngine must never be shared across loops ("attached to a different loop").
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from celery.signals import worker_process_init, worker_process_shutdown
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import get_settings
from app.core.db import create_engine, create_sessionmaker, transaction
from app.core.redis import create_redis

T = TypeVar("T")


class _Runtime:
    loop: asyncio.AbstractEventLoop | None = None
    engine: AsyncEngine | None = None
    sessionmaker: async_sessionmaker[AsyncSession] | None = None
    redis: Redis | None = None


_rt = _Runtime()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a task's coroutine on this process's loop."""
    if _rt.loop is None or _rt.loop.is_closed():
        _rt.loop = asyncio.new_event_loop()
    return _rt.loop.run_until_complete(coro)


def redis() -> Redis:
    if _rt.redis is None:
        _rt.redis = create_redis(get_settings().require_redis_url())
    return _rt.redis


def sessionmaker() -> async_sessionmaker[AsyncSession]:
    if _rt.sessionmaker is None:
        _rt.engine = create_engine(get_settings(), pool_size=2)
        _rt.sessionmaker = create_sessionmaker(_rt.engine)
    return _rt.sessionmaker


@asynccontextmanager
async def task_session() -> AsyncIterator[AsyncSession]:
    """The task's transaction: committed when the block ends, rolled back on error."""
    async with transaction(sessionmaker()) as session:
        yield session


async def _dispose() -> None:
    if _rt.engine is not None:
        await _rt.engine.dispose()
    if _rt.redis is not None:
        await _rt.redis.aclose()


@worker_process_init.connect
def _on_process_init(**_: object) -> None:
    # A forked child must not reuse the parent's loop or connections.
    _rt.loop = asyncio.new_event_loop()
    _rt.engine = _rt.sessionmaker = None
    _rt.redis = None


@worker_process_shutdown.connect
def _on_process_shutdown(**_: object) -> None:
    if _rt.loop is not None and not _rt.loop.is_closed():
        try:
            _rt.loop.run_until_complete(_dispose())
        except Exception:  # shutting down anyway; never block the exit
            logging.getLogger(__name__).warning("worker dispose failed", exc_info=True)
        _rt.loop.close()
