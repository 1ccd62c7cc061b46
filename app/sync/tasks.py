from datetime import UTC, datetime

from app.config import get_settings
from app.sync import service
from app.worker import enqueue, runtime
from app.worker.celery_app import celery_app


def _deps() -> service.SyncDeps:
    return service.SyncDeps(runtime.sessionmaker(), runtime.redis(), get_settings())


@celery_app.task(name="sync.run")
def run_sync(run_id: int) -> str:
    """Execute (or resume) one seller+channel sync run; safe to deliver twice."""
    return runtime.run(service.execute_run(_deps(), run_id))


async def _tick() -> int:
    now = datetime.now(UTC)
    async with runtime.task_session() as session:
        due = await service.fan_out_due(session, now=now)
        for run_id in await service.orphaned_runs(session, runtime.redis(), now=now):
            enqueue.defer(session, service.RUN_TASK, run_id)
    return due


@celery_app.task(name="sync.tick")
def tick() -> int:
    """Beat: queue the sellers that are due, and resume runs whose worker died."""
    return runtime.run(_tick())
