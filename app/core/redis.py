"""Async Redis client factory with bounded timeouts (a dead Redis must fail fast, not hang)."""

from redis import exceptions
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

# A command on a pooled connection that a restarted Redis closed fails once with "Connection
# closed by server": retried on a fresh connection, it succeeds. Two quick retries cover that
# (and a Redis still starting) while a Redis that stays down still fails within seconds.
RETRIES = 2


def create_redis(url: str) -> "Redis":
    return Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), RETRIES),
        retry_on_error=[exceptions.ConnectionError, exceptions.TimeoutError],
        decode_responses=True,
    )
