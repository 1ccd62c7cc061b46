"""Heartbeats in Redis, read by `/readyz` and `app.cli check-heartbeat`.

- Control: beat schedules `health.heartbeat` on the control lane and the worker that runs it
  stamps `HEARTBEAT_KEY`. A fresh stamp proves that beat schedules and that the control lane
  runs tasks (nothing queued in front of it for long).
- Lanes: the main process of every worker stamps each lane it consumes, every heartbeat
  interval (`app.worker.lanes.LaneHeartbeat`), also while its pool is busy with long tasks. A
  lane is alive while some worker stamped it recently: a sorted set per lane, node → time.
"""

import time
from collections.abc import Iterable

import redis as redis_sync
from redis.asyncio import Redis

HEARTBEAT_KEY = "sellerdesk:heartbeat:worker"
LANE_KEY_PREFIX = "sellerdesk:heartbeat:lane:"
# A node not seen for this long is forgotten (container hostnames change with every restart).
FORGET_AFTER_SECONDS = 24 * 3600


def lane_key(lane: str) -> str:
    return LANE_KEY_PREFIX + lane


async def record(redis: Redis, *, now: float | None = None) -> float:
    stamp = time.time() if now is None else now
    await redis.set(HEARTBEAT_KEY, repr(stamp), ex=24 * 3600)
    return stamp


async def last_beat(redis: Redis) -> float | None:
    value = await redis.get(HEARTBEAT_KEY)
    return float(value) if value is not None else None


def sync_client(url: str) -> "redis_sync.Redis":
    """For a worker's main process, which runs no event loop of ours: short timeouts, so a dead
    Redis costs the worker's timer a few seconds, never a hang."""
    return redis_sync.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


def stamp_lanes(client: "redis_sync.Redis", lanes: Iterable[str], node: str, now: float) -> None:
    pipe = client.pipeline(transaction=False)
    for lane in lanes:
        key = lane_key(lane)
        pipe.zadd(key, {node: now})
        pipe.zremrangebyscore(key, "-inf", now - FORGET_AFTER_SECONDS)
        pipe.expire(key, int(FORGET_AFTER_SECONDS))
    pipe.execute()


async def lane_consumers(redis: Redis, lane: str) -> dict[str, float]:
    """Node → the time it last stamped this lane, newest first."""
    rows = await redis.zrange(lane_key(lane), 0, -1, desc=True, withscores=True)
    return {str(row[0]): float(row[1]) for row in rows}


async def waiting(redis: Redis, lane: str) -> int:
    """Tasks queued in the lane and not yet taken by a worker (the queue is a Redis list)."""
    return int(await redis.llen(lane))
