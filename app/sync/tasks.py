import logging
from datetime import UTC, datetime

from app.core.config import get_settings
from app.links import backlog as link_backlog
from app.sync import service
from app.worker import enqueue, names, runtime
from app.worker.celery_app import celery_app

logger = logging.getLogger(__name__)


def _deps() -> service.SyncDeps:
    return service.SyncDeps(runtime.sessionmaker(), runtime.redis(), get_settings())


async def _run(run_id: int) -> str:
    status = await service.execute_run(_deps(), run_id)
    try:
        await _link_new_items(run_id)
    except Exception:  # the run is done; the control tick asks for the recompute instead
        logger.warning("no link recompute requested after sync run %s", run_id, exc_info=True)
    return status


async def _link_new_items(run_id: int) -> None:
    """The run's pages left their new items in the link backlog: now that it no longer writes,
    one recompute covers them all (queued unless one is pending or another channel syncs)."""
    async with runtime.task_session() as session:
        run = await service.run_stats(session, run_id)
    if run is not None:
        await link_backlog.request_if_due(runtime.sessionmaker(), runtime.redis(), run.seller_id)


@celery_app.task(name=names.SYNC_RUN)
def run_sync(run_id: int) -> str:
    """Execute (or resume) one seller+channel sync run; safe to deliver twice."""
    return runtime.run(_run(run_id))


async def _tick() -> int:
    now = datetime.now(UTC)
    async with runtime.task_session() as session:
        due = await service.fan_out_due(session, now=now)
        for run_id in await service.orphaned_runs(session, runtime.redis(), now=now):
            enqueue.defer(session, names.SYNC_RUN, run_id)
    async with runtime.task_session() as session:  # apart: it never holds up the syncs
        await link_backlog.request_overdue(session, runtime.redis())
    return due


@celery_app.task(name=names.SYNC_TICK)
def tick() -> int:
    """Beat: queue the sellers that are due, resume runs whose worker died, and ask for the
    link recomputes that nobody asked for (their task or their sync's end was lost)."""
    return runtime.run(_tick())
