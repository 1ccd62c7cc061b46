from app.links import backlog, service
from app.worker import runtime
from app.worker.celery_app import celery_app


async def _recompute(seller_id: int, interaction_ids: list[int] | None) -> int:
    if interaction_ids:  # a caller that names ids (older publishers): they join the backlog
        async with runtime.task_session() as session:
            await service.add_to_backlog(session, seller_id, interaction_ids)
    drained = await backlog.drain(runtime.sessionmaker(), runtime.redis(), seller_id)
    return drained.written


@celery_app.task(name=service.RECOMPUTE_TASK)
def recompute(seller_id: int, interaction_ids: list[int] | None = None) -> int:
    """Drain the seller's link backlog (one pending task per seller); idempotent."""
    return runtime.run(_recompute(seller_id, interaction_ids))
