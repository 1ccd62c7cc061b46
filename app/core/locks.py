"""A Redis lock with an owner token and an expiry: one sync per seller+channel at a time.

The owner renews it while working; a SIGKILLed owner stops renewing, so the lock frees itself
after `ttl` and the work can be resumed by someone else.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis

logger = logging.getLogger(__name__)

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def sync_key(seller_id: int, channel: str) -> str:
    """The lock a sync run holds while it reads one seller's channel (app/sync); the link
    backlog waits while any of a seller's is held (app/links/backlog.py)."""
    return f"sellerdesk:lock:sync:{seller_id}:{channel}"


class LockLost(Exception):
    """The lock expired or was taken while we held it."""


async def acquire(redis: Redis, key: str, owner: str, ttl: float) -> bool:
    return bool(await redis.set(key, owner, nx=True, px=int(ttl * 1000)))


async def release(redis: Redis, key: str, owner: str) -> None:
    await redis.eval(_RELEASE, 1, key, owner)


async def extend(redis: Redis, key: str, owner: str, ttl: float) -> bool:
    return bool(await redis.eval(_EXTEND, 1, key, owner, int(ttl * 1000)))


async def owner_of(redis: Redis, key: str) -> str | None:
    value = await redis.get(key)
    return str(value) if value is not None else None


@contextlib.asynccontextmanager
async def keep_alive(
    redis: Redis, key: str, owner: str, ttl: float, *, stop_on_loss: bool = False
) -> AsyncIterator[None]:
    """Renew a held lock every ttl/3 until the block ends; then release it.

    With `stop_on_loss`, a lock found lost (it expired during a stall longer than `ttl`, or
    someone else holds it now) cancels the block, which then raises LockLost: whoever took the
    lock over may be doing the same work, and two must not.
    """
    holder = asyncio.current_task()
    lost = False

    async def renew() -> None:
        nonlocal lost
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                held = await extend(redis, key, owner, ttl)
            except Exception:  # a Redis blip: try again next round, the TTL covers us
                logger.warning("could not renew lock %s", key, exc_info=True)
                continue
            if not held:
                logger.error("lock %s lost while held", key)
                lost = True
                if stop_on_loss and holder is not None:
                    holder.cancel()
                return

    task = asyncio.create_task(renew())
    try:
        yield
    except asyncio.CancelledError:
        # Our own cancel (and no other) becomes LockLost; any other cancel goes on as it came.
        if lost and stop_on_loss and holder is not None and holder.uncancel() == 0:
            raise LockLost(key) from None
        raise
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await release(redis, key, owner)
