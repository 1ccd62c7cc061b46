"""A separate OS process hammering one rate-limit bucket, for tests/core/test_ratelimit.py.

    python -m tests.core.ratelimit_worker REDIS_URL SELLER_ID CATEGORY RATE BURST DURATION

Prints "ready" once connected, reads the wall-clock start time (a float) from stdin, sleeps until
then, and acquires in a loop with `--tasks` coroutines until start + DURATION. Then prints one JSON
object: {"grants": [wall-clock time of every grant, ...], "waits": [seconds waited, ...]}.
"""

import argparse
import asyncio
import json
import sys
import time

from app.core.ratelimit import Limit, Priority, RateLimiter, RateLimitTimeout
from app.core.redis import create_redis


async def hammer(args: argparse.Namespace) -> dict[str, list[float]]:
    redis = create_redis(args.redis_url)
    limiter = RateLimiter(redis)
    limit = Limit(rate=args.rate, burst=args.burst)
    priority = Priority[args.priority]
    grants: list[float] = []
    waits: list[float] = []
    try:
        await redis.ping()
        print("ready", flush=True)
        line = await asyncio.to_thread(sys.stdin.readline)
        start_at = float(line)
        end_at = start_at + args.duration
        await asyncio.sleep(max(0.0, start_at - time.time()))

        async def loop() -> None:
            while (remaining := end_at - time.time()) > 0:
                try:
                    waited = await limiter.acquire(
                        args.seller_id,
                        args.category,
                        limit=limit,
                        priority=priority,
                        timeout=remaining,
                    )
                except RateLimitTimeout:
                    return
                grants.append(time.time())
                waits.append(waited)

        await asyncio.gather(*(loop() for _ in range(args.tasks)))
    finally:
        await redis.aclose()
    return {"grants": grants, "waits": waits}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("redis_url")
    parser.add_argument("seller_id", type=int)
    parser.add_argument("category")
    parser.add_argument("rate", type=float)
    parser.add_argument("burst", type=int)
    parser.add_argument("duration", type=float)
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--priority", choices=[p.name for p in Priority], default="SYNC")
    result = asyncio.run(hammer(parser.parse_args()))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
