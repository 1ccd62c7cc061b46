from app.config import get_settings
from app.dispatch import sender
from app.dispatch.service import SEND_TASK
from app.worker import runtime
from app.worker.celery_app import celery_app


def _deps() -> sender.DispatchDeps:
    return sender.DispatchDeps(runtime.sessionmaker(), runtime.redis(), get_settings())


@celery_app.task(name=SEND_TASK)
def send(reply_id: int) -> str:
    """One attempt at sending one reply; safe to deliver twice (claimed under a lock)."""
    return runtime.run(sender.send(_deps(), reply_id))


@celery_app.task(name="dispatch.sweep")
def sweep() -> int:
    """Beat: queue retries that are due and replies whose worker died mid-send."""
    return runtime.run(sender.sweep(_deps()))
