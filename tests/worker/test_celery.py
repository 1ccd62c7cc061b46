import subprocess
import sys
import time

from celery import Celery
from redis.asyncio import Redis

from app.config import Settings
from app.health import heartbeat
from app.worker.celery_app import VISIBILITY_TIMEOUT_SECONDS, celery_app
from tests.services import ROOT


def test_worker_settings_make_a_killed_task_run_again_not_vanish() -> None:
    conf = celery_app.conf

    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT_SECONDS
    assert "health.heartbeat" in conf.beat_schedule


async def test_a_real_worker_consumes_the_heartbeat_task(settings: Settings, redis: Redis) -> None:
    worker = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited
        [sys.executable, "-m", "celery", "-A", "app.worker.celery_app", "worker",
         "--concurrency", "1", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        Celery(broker=settings.redis_url).send_task("health.heartbeat")
        deadline = time.monotonic() + 30
        while (stamp := await heartbeat.last_beat(redis)) is None and time.monotonic() < deadline:
            time.sleep(0.2)  # noqa: ASYNC251 - polling a subprocess, nothing else runs
    finally:
        worker.terminate()
        worker.wait(20)

    assert stamp is not None
    assert abs(time.time() - stamp) < 30
