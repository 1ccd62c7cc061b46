import subprocess
import sys
import time

from celery import Celery
from redis.asyncio import Redis

from app.config import Settings
from app.health import heartbeat
from app.worker.celery_app import LINKS_QUEUE, MAIN_QUEUE, VISIBILITY_TIMEOUT_SECONDS, celery_app
from tests.services import ROOT


def test_worker_settings_make_a_killed_task_run_again_not_vanish() -> None:
    conf = celery_app.conf

    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT_SECONDS
    assert "health.heartbeat" in conf.beat_schedule


def test_link_recomputes_have_their_own_queue_read_after_the_main_one() -> None:
    def queue_of(task: str) -> str:
        return str(celery_app.amqp.router.route({}, task)["queue"].name)

    assert queue_of("links.recompute") == LINKS_QUEUE
    assert {queue_of(t) for t in ("sync.run", "sync.tick", "dispatch.send")} == {MAIN_QUEUE}
    assert [q.name for q in celery_app.conf.task_queues] == [MAIN_QUEUE, LINKS_QUEUE]
    assert [q.routing_key for q in celery_app.conf.task_queues] == [MAIN_QUEUE, LINKS_QUEUE]
    assert celery_app.conf.broker_transport_options["queue_order_strategy"] == "priority"


def _worker() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app.worker.celery_app", "worker",
         "--concurrency", "1", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def test_a_real_worker_consumes_the_heartbeat_task(settings: Settings, redis: Redis) -> None:
    worker = _worker()
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


async def test_a_real_worker_reads_the_links_queue(settings: Settings, redis: Redis) -> None:
    publisher = Celery(broker=settings.redis_url)
    publisher.conf.update(
        task_queues=celery_app.conf.task_queues, task_routes=celery_app.conf.task_routes
    )
    publisher.send_task("links.recompute", args=[4243, []])  # nothing to link: returns at once
    assert await redis.llen(LINKS_QUEUE) == 1

    worker = _worker()
    try:
        deadline = time.monotonic() + 30
        while (waiting := await redis.llen(LINKS_QUEUE)) and time.monotonic() < deadline:
            time.sleep(0.2)  # noqa: ASYNC251 - polling a subprocess, nothing else runs
    finally:
        worker.terminate()
        worker.wait(20)

    assert waiting == 0
