from celery import Task
from celery.utils.time import get_exponential_backoff_interval

from app.core import transient
from app.core.config import get_settings
from app.dispatch import sender
from app.worker import names, runtime
from app.worker.celery_app import celery_app

# A send that met an unavailable database is tried again within seconds, not at the sweeper's
# re-queue (minutes): full-jitter backoff capped at 30 s, about three minutes of tries in all.
SEND_RETRIES = 8
SEND_RETRY_CAP_SECONDS = 30


def _deps() -> sender.DispatchDeps:
    return sender.DispatchDeps(runtime.sessionmaker(), runtime.redis(), get_settings())


def retry_in(exc: BaseException, retries: int) -> int | None:
    """Seconds until the send is tried again, or None to let it fail (the sweeper re-queues)."""
    if retries >= SEND_RETRIES or transient.classify(exc) is not transient.Reason.DATABASE:
        return None
    return get_exponential_backoff_interval(1, retries, SEND_RETRY_CAP_SECONDS, full_jitter=True)


@celery_app.task(name=names.DISPATCH_SEND, bind=True, max_retries=SEND_RETRIES)
def send(self: Task, reply_id: int) -> str:  # type: ignore[type-arg]
    """One attempt at sending one reply; safe to deliver twice (claimed under a lock)."""
    try:
        return runtime.run(sender.send(_deps(), reply_id))
    except Exception as exc:
        countdown = retry_in(exc, self.request.retries)
        if countdown is None:
            raise
        raise self.retry(exc=exc, countdown=countdown) from exc


@celery_app.task(name=names.DISPATCH_SWEEP)
def sweep() -> int:
    """Beat: queue retries that are due and replies whose worker died mid-send."""
    return runtime.run(sender.sweep(_deps()))
