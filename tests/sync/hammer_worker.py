"""One OS process calling the sandbox through the real connector (and so the shared limiter)
as fast as the limiter allows, for tests/sync/test_limits_multiprocess.py.

    python -m tests.sync.hammer_worker REDIS_URL SANDBOX_URL TOKEN SELLER_ID SECONDS

Prints the number of calls it made.
"""

import asyncio
import sys
import time

from app.connectors.wildberries.client import WildberriesClient
from app.core.config import Settings
from app.core.egress import EgressPolicy
from app.core.ratelimit import RateLimiter
from app.core.redis import create_redis


async def main(redis_url: str, url: str, token: str, seller_id: int, seconds: float) -> int:
    redis = create_redis(redis_url)
    client = WildberriesClient(
        token=token, seller_id=seller_id, limiter=RateLimiter(redis),
        feedbacks_url=url, chat_url=url,
        policy=EgressPolicy.from_settings(Settings(egress_allow_marketplace=[url])),
    )  # fmt: skip
    calls = 0
    end = time.monotonic() + seconds
    async with client:
        while time.monotonic() < end:
            await client.list_items("review", is_answered=False, take=1)
            calls += 1
    await redis.aclose()
    return calls


if __name__ == "__main__":
    redis_url, url, token, seller_id, seconds = sys.argv[1:6]
    print(asyncio.run(main(redis_url, url, token, int(seller_id), float(seconds))))
