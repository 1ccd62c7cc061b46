from app.links import service
from app.worker import runtime
from app.worker.celery_app import celery_app


async def run_recompute(seller_id: int, interaction_ids: list[int] | None) -> int:
    async with runtime.task_session() as session:
        return await service.recompute(session, seller_id, interaction_ids)


@celery_app.task(name=service.RECOMPUTE_TASK)
def recompute(seller_id: int, interaction_ids: list[int] | None = None) -> int:
    """Recompute links for these interactions (None: the whole seller); idempotent."""
    return runtime.run(run_recompute(seller_id, interaction_ids))
