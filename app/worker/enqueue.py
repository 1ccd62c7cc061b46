"""Send Celery tasks only after the transaction that created their rows has committed.

A task must never race an uncommitted row (style.md rule 7): `defer` parks the task on the
session and `core.db.transaction` publishes it after commit, or drops it on rollback.
"""

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

AFTER_COMMIT = "after_commit"


def defer(session: AsyncSession, task_name: str, *args: Any) -> None:
    session.info.setdefault(AFTER_COMMIT, []).append((task_name, args))


async def publish_deferred(session: AsyncSession) -> None:
    from app.worker.celery_app import celery_app

    for task_name, args in session.info.pop(AFTER_COMMIT, []):
        await asyncio.to_thread(celery_app.send_task, task_name, args=list(args))


def drop_deferred(session: AsyncSession) -> None:
    session.info.pop(AFTER_COMMIT, None)
