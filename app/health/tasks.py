from app.health import heartbeat
from app.worker import runtime
from app.worker.celery_app import celery_app


@celery_app.task(name="health.heartbeat")
def heartbeat_task() -> float:
    return runtime.run(heartbeat.record(runtime.redis()))
