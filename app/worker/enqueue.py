"""Send Celery tasks only after the transaction that created their rows has committed.

A task must never race an uncommitted row (style.md rule 7): `defer` parks the task on the
session and `core.db.transaction` publishes it after commit, or drops it on rollback.

`defer_once` / `send_once` coalesce: the task is published only if no task holding the same
marker is pending (a Redis key set with NX and a TTL, in the broker's Redis). The task clears
its marker when it is done, and the work it covers lives in Postgres, so a lost marker or task
costs a delay (the TTL), never work.
"""

import asyncio
from functools import lru_cache
from typing import Any

import redis
from sqlalchemy.ext.asyncio import AsyncSession

AFTER_COMMIT = "after_commit"
AFTER_COMMIT_ONCE = "after_commit_once"


def defer(session: AsyncSession, task_name: str, *args: Any) -> None:
    session.info.setdefault(AFTER_COMMIT, []).append((task_name, args))


def defer_once(session: AsyncSession, marker: str, ttl: int, task_name: str, *args: Any) -> None:
    session.info.setdefault(AFTER_COMMIT_ONCE, []).append((marker, ttl, task_name, args))


async def publish_deferred(session: AsyncSession) -> None:
    from app.worker.celery_app import celery_app

    for task_name, args in session.info.pop(AFTER_COMMIT, []):
        await asyncio.to_thread(celery_app.send_task, task_name, args=list(args))
    for marker, ttl, task_name, args in session.info.pop(AFTER_COMMIT_ONCE, []):
        await send_once(marker, ttl, task_name, *args)


def drop_deferred(session: AsyncSession) -> None:
    session.info.pop(AFTER_COMMIT, None)
    session.info.pop(AFTER_COMMIT_ONCE, None)


async def send_once(marker: str, ttl: int, task_name: str, *args: Any) -> bool:
    """Publish the task unless `marker` is set; True when this call published it."""
    return await asyncio.to_thread(_send_once, marker, ttl, task_name, args)


def _send_once(marker: str, ttl: int, task_name: str, args: tuple[Any, ...]) -> bool:
    from app.worker.celery_app import celery_app

    markers = _markers(str(celery_app.conf.broker_url))
    if not markers.set(marker, "1", nx=True, ex=ttl):
        return False
    try:
        celery_app.send_task(task_name, args=list(args))
    except BaseException:
        markers.delete(marker)  # nothing is pending: the next request must be able to publish
        raise
    return True


@lru_cache(maxsize=4)
def _markers(url: str) -> "redis.Redis":
    # Synchronous, like `send_task`: both run in a worker thread, whatever loop called us.
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
