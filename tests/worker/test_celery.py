import os
import socket
import subprocess
import time

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.worker import heartbeat, lanes
from app.worker.celery_app import VISIBILITY_TIMEOUT_SECONDS, celery_app
from tests.services import ROOT


def test_worker_settings_make_a_killed_task_run_again_not_vanish() -> None:
    conf = celery_app.conf

    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT_SECONDS
    assert "health.heartbeat" in conf.beat_schedule


BLOCKED_ON_BACKLOG = """
SELECT count(*) FROM pg_locks
WHERE NOT granted AND relation = 'link_backlog'::regclass AND database = (
    SELECT oid FROM pg_database WHERE datname = current_database())
"""


def _queue_of(task: str) -> str:
    return str(celery_app.amqp.router.route({}, task)["queue"].name)


def test_every_task_goes_to_its_lane() -> None:
    celery_app.loader.import_default_modules()
    ours = {name for name in celery_app.tasks if not name.startswith("celery.")}
    routed = {task: lane.name for lane in lanes.LANES for task in lane.tasks}

    assert set(routed) == ours  # no task left to the default queue, no route to a lost task
    assert {task: _queue_of(task) for task in ours} == routed
    assert _queue_of("links.recompute") == "background"
    assert {_queue_of(t) for t in ("health.heartbeat", "sync.tick", "dispatch.sweep")} == {
        "control"
    }
    assert [q.name for q in celery_app.conf.task_queues] == [lane.name for lane in lanes.LANES]
    assert set(celery_app.conf.beat_schedule) <= set(lanes.CONTROL.tasks)


def test_a_publisher_routes_as_the_app_does(settings: Settings) -> None:
    client = lanes.publisher(settings.require_redis_url())

    for lane in lanes.LANES:
        for task in lane.tasks:
            assert client.amqp.router.route({}, task)["queue"].name == lane.name


def _worker(lane: lanes.Lane, **env: str) -> subprocess.Popen[bytes]:
    argv = lanes.worker_argv(lane, loglevel="WARNING")
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=os.environ | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _node(lane: lanes.Lane) -> str:
    return f"{lane.node}@{socket.gethostname()}"


async def _wait_for(redis: Redis, lane: lanes.Lane, after: float) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stamp = (await heartbeat.lane_consumers(redis, lane.name)).get(_node(lane))
        if stamp is not None and stamp > after:
            return stamp
        time.sleep(0.2)  # noqa: ASYNC251 - polling a subprocess, nothing else runs
    raise AssertionError(f"{lane.name} was not stamped after {after}")


@pytest.mark.multiprocess
async def test_the_control_worker_runs_the_heartbeat_and_stamps_its_lane(
    settings: Settings, redis: Redis
) -> None:
    worker = _worker(lanes.CONTROL)
    try:
        lanes.publisher(settings.require_redis_url()).send_task("health.heartbeat")
        await _wait_for(redis, lanes.CONTROL, after=0)
        deadline = time.monotonic() + 30
        while (stamp := await heartbeat.last_beat(redis)) is None and time.monotonic() < deadline:
            time.sleep(0.2)  # noqa: ASYNC251 - polling a subprocess, nothing else runs
    finally:
        worker.terminate()
        worker.wait(20)

    assert stamp is not None
    assert abs(time.time() - stamp) < 30
    # A worker stamps the lanes it consumes, and only those.
    for other in (lanes.REPLIES, lanes.SYNC, lanes.BACKGROUND):
        assert await heartbeat.lane_consumers(redis, other.name) == {}


@pytest.mark.multiprocess
async def test_a_lane_stays_stamped_while_its_pool_is_busy(
    settings: Settings, redis: Redis, engine: AsyncEngine
) -> None:
    """The background worker's only pool process waits on a table lock inside a recompute; its
    main process goes on stamping the lane, and the task finishes once the lock is gone."""
    worker = _worker(lanes.BACKGROUND, HEARTBEAT_INTERVAL_SECONDS="0.5")
    try:
        first = await _wait_for(redis, lanes.BACKGROUND, after=0)
        async with engine.connect() as blocker:
            await blocker.begin()
            await blocker.exec_driver_sql("LOCK TABLE link_backlog IN ACCESS EXCLUSIVE MODE")
            lanes.publisher(settings.require_redis_url()).send_task("links.recompute", [4243])
            deadline = time.monotonic() + 30
            while await heartbeat.waiting(redis, "background") and time.monotonic() < deadline:
                time.sleep(0.1)  # noqa: ASYNC251 - polling a subprocess, nothing else runs
            taken = time.time()
            later = await _wait_for(redis, lanes.BACKGROUND, after=taken + 1.0)
            async with engine.connect() as observer:
                blocked = await observer.scalar(text(BLOCKED_ON_BACKLOG))
            await blocker.rollback()
        assert blocked == 1  # the task was still waiting when the lane was stamped again
        assert later > first
        assert await heartbeat.waiting(redis, "background") == 0
    finally:
        worker.terminate()
        worker.wait(20)
