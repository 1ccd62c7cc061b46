"""Work lanes: one Celery queue per kind of work, each read by worker processes of its own.

A single queue let an import's link work and a reply backlog sit in front of the heartbeat, the
sync tick and the outbox sweep (they expired unrun) and of sync-now. With a lane each, heavy work
only ever waits behind work of its own kind:

| lane       | tasks                                          | worker             |
|------------|------------------------------------------------|--------------------|
| control    | health.heartbeat, sync.tick, dispatch.sweep    | 1 thread           |
| replies    | dispatch.send                                  | prefork, 1 process |
| sync       | sync.run                                       | prefork, 2         |
| background | links.recompute (later: snapshots, rollups)    | prefork, 1         |

Control tasks are tiny and periodic (each expires when the next is due), so one thread in the
worker's own process is enough and costs no second process (one thread, not more: runtime.py
keeps one event loop per process, which only one thread at a time may run). The other lanes
fork pool processes: a pool process killed mid-task is noticed by its parent, which re-queues
the task at once (`task_reject_on_worker_lost`), and the parent keeps stamping the lane's
heartbeat while its children are busy with long tasks (`LaneHeartbeat`).
"""

import logging
import sys
import time
from dataclasses import dataclass
from typing import Any, Literal

from celery import Celery, bootsteps
from kombu import Queue

from app.worker import names

logger = logging.getLogger(__name__)

CELERY_APP = "app.worker.celery_app"


@dataclass(frozen=True)
class Lane:
    name: str  # also the queue's name
    tasks: tuple[str, ...]  # task names routed to this lane
    concurrency: int
    pool: Literal["prefork", "threads", "solo"]

    @property
    def node(self) -> str:
        """The worker's node name prefix (`w-sync@host`), and the dev supervisor's child name."""
        return f"w-{self.name}"


CONTROL = Lane("control", (names.HEARTBEAT, names.SYNC_TICK, names.DISPATCH_SWEEP), 1, "threads")
REPLIES = Lane("replies", (names.DISPATCH_SEND,), 1, "prefork")
SYNC = Lane("sync", (names.SYNC_RUN,), 2, "prefork")
BACKGROUND = Lane("background", (names.LINKS_RECOMPUTE,), 1, "prefork")
LANES = (CONTROL, REPLIES, SYNC, BACKGROUND)
BY_NAME = {lane.name: lane for lane in LANES}


def routing() -> dict[str, Any]:
    """The queue settings every publisher needs. A bare `Celery(broker=…)` would publish to the
    `celery` queue, which no lane reads; publishers use `publisher()` or `celery_app`."""
    return {
        "task_default_exchange": "sellerdesk",  # every lane's queue is bound to it by name
        "task_queues": tuple(Queue(lane.name, routing_key=lane.name) for lane in LANES),
        "task_routes": {task: {"queue": lane.name} for lane in LANES for task in lane.tasks},
        # A task someone forgot to route must not land in front of control or replies.
        "task_default_queue": BACKGROUND.name,
    }


def publisher(broker_url: str) -> Celery:
    """A Celery client that only sends tasks (by name) to their lanes: for tests and benches."""
    client = Celery(broker=broker_url)
    client.conf.update(routing())
    return client


def worker_argv(lane: Lane, *, python: str = sys.executable, loglevel: str = "INFO") -> list[str]:
    """The command line of one lane's worker (`make run` and docker-compose both use it)."""
    return [
        python, "-m", "celery", "-A", CELERY_APP, "worker",
        "--loglevel", loglevel,
        "--queues", lane.name,
        "--hostname", f"{lane.node}@%h",
        "--pool", lane.pool,
        "--concurrency", str(lane.concurrency),
        # Workers never talk to each other: no event heartbeats, gossip or startup sync
        # (nothing here revokes tasks); the lane heartbeat below is what readiness reads.
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


class LaneHeartbeat(bootsteps.StartStopStep):
    """Stamps "this node consumes these lanes" in Redis every heartbeat interval.

    A consumer step of the worker's main process, run by its timer: it keeps stamping while the
    pool's processes are busy with long tasks, and stops when the consumer loses the broker or
    the process dies. `/readyz` reads the stamps (`app.worker.heartbeat.lane_consumers`).
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.timer_ref: Any = None
        self.client: Any = None

    def start(self, c: Any) -> None:
        from app.core.config import get_settings
        from app.worker import heartbeat

        settings = get_settings()
        self.client = heartbeat.sync_client(settings.require_redis_url())
        consumed = set(c.app.amqp.queues.consume_from)
        lanes = [lane.name for lane in LANES if lane.name in consumed]

        def stamp() -> None:
            try:
                heartbeat.stamp_lanes(self.client, lanes, c.hostname, time.time())
            except Exception as exc:  # Redis away: readiness says so; the worker carries on
                logger.warning("lane heartbeat not stamped: %s", exc)

        stamp()
        self.timer_ref = c.timer.call_repeatedly(settings.heartbeat_interval_seconds, stamp)

    def stop(self, c: Any) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None
        if self.client is not None:
            self.client.close()
            self.client = None

    shutdown = stop
