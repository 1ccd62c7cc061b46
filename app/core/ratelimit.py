"""Per-seller rate limits for marketplace calls, shared by every process through Redis.

product.md §2/§5 and style.md rule 12: one token bucket per seller and API group, exact across
all workers (the predecessor divided the limit by the number of workers). The limits themselves
are the marketplace's: each connector under app/connectors/ defines its own and passes them
in (`defaults`, or `limit` per call).

Algorithm: GCRA, the token bucket kept as one number. A bucket of `burst` tokens refilled at `rate`
per second is its "theoretical arrival time" `tat`: a call at `now` is granted when
`max(tat, now) + interval - now <= burst * interval` (interval = 1 / rate), which then becomes the
new `tat`; otherwise it is told how long until that holds. In any window of W seconds at most
`burst + rate * W` calls are granted. Each decision is one Lua script run atomically by Redis on
Redis' own clock (`TIME`), so callers' clocks never matter and no two callers get the same token.

Keys, both with the `{seller:category}` hash tag so they share a cluster slot:
- `<prefix>:{<seller>:<category>}` hash: `tat` (µs, Redis time) and `until` (µs, the end of a
  penalty). It expires once it carries nothing a fresh bucket would not (at `tat`, when the bucket
  is full again), so idle sellers cost nothing.
- `<prefix>:{<seller>:<category>}:reply` sorted set: REPLY acquirers waiting for a token, scored by
  when their registration expires (their wait plus a grace period), so a crashed waiter stops
  holding the bucket soon after it would have been served. While any is registered, SYNC acquirers
  are refused: the next token goes to a reply, never to the next sync page.

A 429 from the marketplace (`penalize`) stores `until`: nobody is granted before it, and since the
marketplace's own bucket was empty at the 429, ours restarts empty too: one token at `until`, then
the steady rate (`tat` is raised to `until + (burst - 1) * interval` when next used).

Fail closed: when Redis is unreachable or errors, `acquire` never grants; it logs, backs off
(capped exponential with jitter) and retries until Redis answers or its timeout passes. Every Redis
call is bounded by its own timeout, whatever the client's socket and retry settings.
"""

import asyncio
import enum
import logging
import math
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    rate: float  # tokens per second (steady refill)
    burst: int  # bucket size

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be a positive number, got {self.rate!r}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst!r}")


class Priority(enum.IntEnum):
    REPLY = 0  # a waiting reply gets the next token before a sync page
    SYNC = 1


class RateLimitTimeout(Exception):
    """No token was granted within the caller's timeout (the bucket was busy or Redis was down)."""


# Bounds on one Redis round trip: a black-holed Redis must not stall an acquire for the client's
# own timeouts and retries (redis-py retries connection errors with backoff by default).
OP_TIMEOUT = 2.0
MIN_OP_TIMEOUT = 0.25  # the last attempt at the deadline still gets this long
# Sleeping until a token: the script's wait plus a little jitter, so callers told the same wait
# do not all arrive in the same microsecond.
JITTER_FRACTION = 0.1
JITTER_CAP = 0.05
MIN_SLEEP = 0.001
# Redis unreachable or failing: capped exponential backoff with jitter.
BACKOFF_BASE = 0.05
BACKOFF_CAP = 2.0
# A REPLY waiter's registration outlives the wait it was told by this much.
REPLY_GRACE = 2.0
# A penalty record is kept this long after it ends (until a grant folds it into the bucket).
PENALTY_KEEP = 3600.0

_US = 1_000_000

# KEYS[1] bucket hash, KEYS[2] reply waiters. ARGV: interval µs, burst, priority (0 reply, 1 sync),
# waiter id, reply grace µs. Returns {1, 0} when granted, {0, µs to wait} when not.
_ACQUIRE_LUA = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local is_reply = ARGV[3] == '0'

local state = redis.call('HMGET', KEYS[1], 'tat', 'until')
local tat = tonumber(state[1]) or now
local penalty = tonumber(state[2])
if penalty then
  -- the marketplace's bucket was empty at the 429: one token at `until`, then the steady rate
  tat = math.max(tat, penalty + (burst - 1) * interval)
end
tat = math.max(tat, now)
local new_tat = tat + interval
-- microseconds until a token is available (<= 0: one is available now)
local wait = new_tat - burst * interval - now

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not is_reply and redis.call('ZCARD', KEYS[2]) > 0 then
  -- a reply is waiting: the next token is its; this caller may try for the one after
  wait = math.max(wait, 0) + interval
end

if wait <= 0 then
  redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', new_tat))
  if penalty then
    redis.call('HDEL', KEYS[1], 'until')
  end
  -- after new_tat the bucket is full again, exactly what a missing key means
  redis.call('PEXPIRE', KEYS[1], math.ceil((new_tat - now) / 1000) + 1000)
  if is_reply then
    redis.call('ZREM', KEYS[2], ARGV[4])
  end
  return {1, 0}
end

if is_reply then
  local expires = now + wait + tonumber(ARGV[5])
  redis.call('ZADD', KEYS[2], string.format('%.0f', expires), ARGV[4])
  local keep = math.ceil((expires - now) / 1000) + 1000
  if redis.call('PTTL', KEYS[2]) < keep then
    redis.call('PEXPIRE', KEYS[2], keep)
  end
end
return {0, math.max(1, math.ceil(wait))}
"""

# KEYS[1] bucket hash. ARGV: penalty µs, keep ms.
_PENALIZE_LUA = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local penalty_end = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'until'))
if not current or current < penalty_end then
  redis.call('HSET', KEYS[1], 'until', string.format('%.0f', penalty_end))
end
local keep = math.ceil((penalty_end - now) / 1000) + tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < keep then
  redis.call('PEXPIRE', KEYS[1], keep)
end
return 1
"""

_REDIS_FAILURES = (RedisError, OSError, TimeoutError)


class RateLimiter:
    """Token buckets per (seller, category) in Redis, shared by every process using that Redis.

    One instance per event loop (the Redis client is bound to it); any number of processes.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "sellerdesk:rl",
        defaults: Mapping[str, Limit] | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.defaults = dict(defaults or {})  # category → limit, when a call passes none
        self._acquire_script = redis.register_script(_ACQUIRE_LUA)
        self._penalize_script = redis.register_script(_PENALIZE_LUA)

    async def acquire(
        self,
        seller_id: int,
        category: str,
        *,
        limit: Limit | None = None,
        priority: Priority = Priority.SYNC,
        timeout: float | None = None,  # noqa: ASYNC109 - the interface; it also bounds Redis retries
    ) -> float:
        """Wait until a token is granted; returns seconds waited.

        Raises RateLimitTimeout if `timeout` passes first. Never grants while Redis is failing.
        """
        limit = self._limit(category, limit)
        bucket, waiters = self._keys(seller_id, category)
        waiter_id = uuid.uuid4().hex
        interval_us = _US / limit.rate
        args: list[Any] = [
            f"{interval_us:.3f}",
            limit.burst,
            int(priority),
            waiter_id,
            int(REPLY_GRACE * _US),
        ]
        started = time.monotonic()
        deadline = None if timeout is None else started + max(0.0, timeout)
        failures = 0
        registered = False
        try:
            while True:
                try:
                    async with asyncio.timeout(self._op_timeout(deadline)):
                        result = await self._acquire_script(keys=[bucket, waiters], args=args)
                    granted, wait_us = int(result[0]), int(result[1])
                except _REDIS_FAILURES as exc:
                    failures += 1
                    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(failures - 1, 30))
                    delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
                    logger.warning(
                        "rate limiter: Redis failed (%s: %s); no token granted, retrying in %.2f s",
                        type(exc).__name__,
                        exc,
                        delay,
                        extra={
                            "seller_id": seller_id,
                            "category": category,
                            "attempt": failures,
                        },
                    )
                else:
                    failures = 0
                    if granted:
                        registered = False  # the script removed the registration
                        return time.monotonic() - started
                    registered = registered or priority is Priority.REPLY
                    wait = wait_us / _US
                    jitter = random.uniform(0, min(JITTER_CAP, wait * JITTER_FRACTION))  # noqa: S311
                    delay = max(MIN_SLEEP, wait + jitter)
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise RateLimitTimeout(
                            f"no {category} token for seller {seller_id} within {timeout} s"
                        )
                    delay = min(delay, remaining)
                await asyncio.sleep(delay)
        finally:
            if registered:
                await self._deregister(waiters, waiter_id)

    async def penalize(self, seller_id: int, category: str, seconds: float) -> None:
        """The marketplace answered 429 with X-Ratelimit-Retry: nobody (any process) gets a
        token for this bucket for `seconds`.

        Best effort: if Redis fails, this logs and returns; acquirers fail closed meanwhile anyway.
        """
        if not (math.isfinite(seconds) and seconds > 0):
            return
        bucket, _ = self._keys(seller_id, category)
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                await self._penalize_script(
                    keys=[bucket], args=[int(seconds * _US), int(PENALTY_KEEP * 1000)]
                )
        except _REDIS_FAILURES as exc:
            logger.warning(
                "rate limiter: could not record a %.1f s penalty (%s: %s)",
                seconds,
                type(exc).__name__,
                exc,
                extra={"seller_id": seller_id, "category": category},
            )

    def _keys(self, seller_id: int, category: str) -> tuple[str, str]:
        bucket = f"{self.prefix}:{{{seller_id}:{category}}}"
        return bucket, f"{bucket}:reply"

    def _limit(self, category: str, limit: Limit | None) -> Limit:
        if limit is not None:
            return limit
        try:
            return self.defaults[category]
        except KeyError:
            raise ValueError(f"no default limit for category {category!r}; pass `limit`") from None

    @staticmethod
    def _op_timeout(deadline: float | None) -> float:
        if deadline is None:
            return OP_TIMEOUT
        return min(OP_TIMEOUT, max(MIN_OP_TIMEOUT, deadline - time.monotonic()))

    async def _deregister(self, waiters: str, waiter_id: str) -> None:
        """A REPLY acquirer leaving without a token (timeout, cancel): stop holding SYNC back.

        If Redis fails here, the registration expires by itself shortly after its wait.
        """
        try:
            # Short: it runs after a timeout or a cancel, which should not be held up by Redis.
            async with asyncio.timeout(MIN_OP_TIMEOUT):
                await self.redis.zrem(waiters, waiter_id)
        except _REDIS_FAILURES as exc:
            logger.warning(
                "rate limiter: could not deregister a reply waiter (%s: %s)",
                type(exc).__name__,
                exc,
            )
