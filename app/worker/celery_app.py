"""The Celery app: Redis broker, beat schedule, settings chosen so a killed worker loses nothing."""

from typing import Any

from celery import Celery
from celery.signals import setup_logging

from app.core.config import get_settings
from app.core.logging import configure_logging
from app.worker import lanes, names

# Longest task we expect, with margin. Redis redelivers an unacked task after this long, so it
# must exceed every task's run time or a slow task would be run twice in parallel.
VISIBILITY_TIMEOUT_SECONDS = 2 * 60 * 60

# Imported by the worker at start, by name: the worker is infrastructure that domains build on,
# so it never imports them; `app.models` puts every table in the metadata (foreign keys resolve).
TASK_MODULES = [
    "app.models",
    "app.health.tasks",
    "app.sync.tasks",
    "app.links.tasks",
    "app.dispatch.tasks",
]


def create_celery() -> Celery:
    settings = get_settings()
    broker = settings.redis_url or "redis://127.0.0.1:6379/0"
    app = Celery("sellerdesk", broker=broker, include=TASK_MODULES)
    transport_options = {
        "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
        # A dead or frozen Redis fails a publish in seconds instead of hanging it (kombu waits
        # forever by default). The socket timeout stays well above BRPOP's 1 s poll.
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
    app.conf.update(
        # Ack only after the task ran, and re-queue it when the worker process dies mid-task
        # (SIGKILL, OOM): every task is idempotent, so running twice is safe, losing one is not.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # Take one task at a time: with acks_late, prefetched tasks would sit unacked behind a
        # long sync and be redelivered to another worker after the visibility timeout.
        worker_prefetch_multiplier=1,
        # Nothing reads task results: state lives in Postgres (sync_runs, outbound_replies).
        task_ignore_result=True,
        # Each task to its lane's queue, each lane read by workers of its own (lanes.py).
        **lanes.routing(),
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=transport_options,
        result_backend_transport_options=transport_options,
        visibility_timeout=VISIBILITY_TIMEOUT_SECONDS,
        broker_connection_retry_on_startup=True,
        # One reconnect at once (a connection Redis dropped on restart), then give up: a request
        # that publishes after commit must not wait out kombu's default of three retries; the
        # rows' owners deliver what was not published (app/worker/enqueue.py).
        task_publish_retry_policy={
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        timezone="UTC",
        beat_schedule={
            names.SYNC_TICK: {
                "task": names.SYNC_TICK,
                "schedule": settings.sync_tick_seconds,
                "options": {"expires": settings.sync_tick_seconds},
            },
            names.DISPATCH_SWEEP: {
                "task": names.DISPATCH_SWEEP,
                "schedule": settings.dispatch_sweep_seconds,
                "options": {"expires": settings.dispatch_sweep_seconds},
            },
            names.HEARTBEAT: {
                "task": names.HEARTBEAT,
                "schedule": settings.heartbeat_interval_seconds,
                "options": {"expires": settings.heartbeat_interval_seconds},
            },
        },
    )
    app.steps["consumer"].add(lanes.LaneHeartbeat)
    return app


@setup_logging.connect
def _use_our_logging(**_: Any) -> None:
    """Worker and beat log through our handler (JSON in production), not Celery's own."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format, process="worker")


celery_app = create_celery()
