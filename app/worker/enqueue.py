"""Send Celery tasks only after the transaction that created their rows has committed.

A task must never race an uncommitted row (style.md rule 7): `defer` parks the task on the
session and `core.db.transaction` publishes it after commit, or drops it on rollback (the hooks
registered at the end of this module).

`defer_once` / `send_once` coalesce: the task is published only if no task holding the same
marker is pending (a Redis key set with NX and a TTL, in the broker's Redis). The task clears
its marker when it is done, and the work it covers lives in Postgres, so a lost marker or task
costs a delay (the TTL), never work.

Publishing never fails the transaction's owner: the rows are committed, and a request that saved
them must say so (a client told 500 retries and meets its own row). A publish is bounded
(`broker_publish_timeout_seconds`, on top of the broker's own connect and socket timeouts in
app/worker/celery_app.py); when it fails, the rest of the batch is not tried (the broker is
down), a warning is logged, and each task's *fallback* runs in a short transaction of its own on
the same session. The owner of the rows registers it with `on_publish_failure`, and makes its
periodic sweep pick the rows up at the next pass: the outbox marks the replies due now
(app/dispatch/service.py). A task without a fallback is left to its owner's sweep as it is
(sync runs: the control tick re-queues runs left `queued`; link backlogs: the control tick asks
for overdue ones).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any

import redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import db
from app.core.config import get_settings

logger = logging.getLogger(__name__)

AFTER_COMMIT = "after_commit"
AFTER_COMMIT_ONCE = "after_commit_once"

Calls = Sequence[tuple[Any, ...]]
Fallback = Callable[[AsyncSession, Calls], Awaitable[None]]
_fallbacks: dict[str, Fallback] = {}


def defer(session: AsyncSession, task_name: str, *args: Any) -> None:
    session.info.setdefault(AFTER_COMMIT, []).append((task_name, args))


def defer_once(session: AsyncSession, marker: str, ttl: int, task_name: str, *args: Any) -> None:
    session.info.setdefault(AFTER_COMMIT_ONCE, []).append((marker, ttl, task_name, args))


def on_publish_failure(task_name: str) -> Callable[[Fallback], Fallback]:
    """Register what to do, in a new transaction, with the arguments of `task_name` calls whose
    publish failed."""

    def register(fallback: Fallback) -> Fallback:
        _fallbacks[task_name] = fallback
        return fallback

    return register


async def publish_deferred(session: AsyncSession) -> None:
    deferred: list[tuple[str, tuple[Any, ...]]] = session.info.pop(AFTER_COMMIT, [])
    once: list[tuple[str, int, str, tuple[Any, ...]]] = session.info.pop(AFTER_COMMIT_ONCE, [])
    timeout = get_settings().broker_publish_timeout_seconds
    unsent = await _publish(deferred, each_within=timeout)
    if unsent:
        await _fall_back(session, unsent, within=timeout)
        return  # the broker is down: the coalesced ones' owners ask again too
    for marker, ttl, task_name, args in once:
        try:
            async with asyncio.timeout(timeout):
                await send_once(marker, ttl, task_name, *args)
        except Exception as exc:  # the work is in Postgres: its owner's tick asks again
            logger.warning("publishing %s failed (%r); its owner asks again later", task_name, exc)
            return


async def _publish(
    deferred: list[tuple[str, tuple[Any, ...]]], *, each_within: float
) -> list[tuple[str, tuple[Any, ...]]]:
    """Publish in order until one fails; what was not published."""
    from app.worker.celery_app import celery_app

    for index, (task_name, args) in enumerate(deferred):
        try:
            async with asyncio.timeout(each_within):
                await asyncio.to_thread(celery_app.send_task, task_name, args=list(args))
        except Exception as exc:
            logger.warning(
                "publishing %d task(s) failed (%r); their owners deliver them later",
                len(deferred) - index,
                exc,
            )
            return deferred[index:]
    return []


async def _fall_back(
    session: AsyncSession, unsent: list[tuple[str, tuple[Any, ...]]], *, within: float
) -> None:
    by_task: dict[str, list[tuple[Any, ...]]] = {}
    for task_name, args in unsent:
        by_task.setdefault(task_name, []).append(args)
    todo = [(_fallbacks[name], calls) for name, calls in by_task.items() if name in _fallbacks]
    if not todo:
        return
    try:
        async with asyncio.timeout(within):
            for fallback, calls in todo:
                await fallback(session, calls)
            await session.commit()
    except Exception:
        # The rows stay as they were: their owner's sweep still finds them, only later. The
        # connection is dropped, not rolled back: the database may be the one not answering.
        logger.warning("the fallback for unpublished tasks failed", exc_info=True)
        await session.invalidate()


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


db.on_transaction_end(commit=publish_deferred, rollback=drop_deferred)
