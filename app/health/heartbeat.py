"""Worker/beat heartbeat: a beat-scheduled task run by a worker stamps Redis; /readyz reads it.

A fresh stamp proves both that beat is scheduling and that a worker is consuming.
"""

import time

from redis.asyncio import Redis

HEARTBEAT_KEY = "sellerdesk:heartbeat:worker"


async def record(redis: Redis, *, now: float | None = None) -> float:
    stamp = time.time() if now is None else now
    await redis.set(HEARTBEAT_KEY, repr(stamp), ex=24 * 3600)
    return stamp


async def last_beat(redis: Redis) -> float | None:
    value = await redis.get(HEARTBEAT_KEY)
    return float(value) if value is not None else None
