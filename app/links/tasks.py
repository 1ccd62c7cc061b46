from typing import Any

from redis.asyncio import Redis

from app.links import service
from app.sync import service as sync_service
from app.worker import runtime
from app.worker.celery_app import celery_app

# Links compare an item with the seller's other items: while a sync of the seller still writes
# them, the task waits (and leaves the sync the CPU: an import's links cost twice its sync).
SYNC_WAIT_SECONDS = 15
MAX_SYNC_WAITS = 40  # ten minutes: a seller that never stops syncing gets its links anyway


async def run_recompute(seller_id: int, interaction_ids: list[int] | None) -> int:
    async with runtime.task_session() as session:
        return await service.recompute(session, seller_id, interaction_ids)


async def should_wait(redis: Redis, seller_id: int, waited: int) -> bool:
    return waited < MAX_SYNC_WAITS and await sync_service.is_syncing(redis, seller_id)


@celery_app.task(name=service.RECOMPUTE_TASK, bind=True, max_retries=None)
def recompute(self: Any, seller_id: int, interaction_ids: list[int] | None = None) -> int:
    """Recompute links for these interactions (None: the whole seller); idempotent."""
    if runtime.run(should_wait(runtime.redis(), seller_id, self.request.retries)):
        raise self.retry(countdown=SYNC_WAIT_SECONDS)
    return runtime.run(run_recompute(seller_id, interaction_ids))
