"""Async Redis client factory with bounded timeouts (a dead Redis must fail fast, not hang)."""

from redis.asyncio import Redis


def create_redis(url: str) -> "Redis":
    return Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        decode_responses=True,
    )
