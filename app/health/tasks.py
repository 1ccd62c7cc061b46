from app.worker import heartbeat, names, runtime
from app.worker.celery_app import celery_app


@celery_app.task(name=names.HEARTBEAT)
def heartbeat_task() -> float:
    return runtime.run(heartbeat.record(runtime.redis()))
