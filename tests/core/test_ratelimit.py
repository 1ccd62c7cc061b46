"""The per-seller rate limiter against a real Redis, with real processes where it matters."""

import asyncio
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from app.connectors.wildberries.limits import CHAT, DEFAULT_LIMITS, FEEDBACKS
from app.core import ratelimit
from app.core.config import Settings
from app.core.ratelimit import Limit, Priority, RateLimiter, RateLimitTimeout
from app.core.redis import create_redis
from app.dev.embedded import EmbeddedRedis, free_port
from tests.services import ROOT

Proc = asyncio.subprocess.Process


@pytest.fixture
def limiter(redis: Redis) -> RateLimiter:
    """With a marketplace's buckets as the defaults (a call may pass its own `limit`)."""
    return RateLimiter(redis, defaults=DEFAULT_LIMITS)


def quick_redis(url: str) -> Redis:
    """A client that gives up fast, for the tests where Redis is down."""
    return Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)


def max_in_window(times: list[float], window: float) -> int:
    """The most grants in any closed window [t - window, t]."""
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] < t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def spawn_workers(
    count: int,
    redis_url: str,
    seller_id: int,
    category: str,
    limit: Limit,
    duration: float,
    *,
    tasks: int = 1,
    priority: Priority = Priority.SYNC,
) -> list[Proc]:
    """Start `count` hammering processes (tests/core/ratelimit_worker.py) and wait until ready."""
    argv = [
        "-m", "tests.core.ratelimit_worker", redis_url, str(seller_id), category,
        str(limit.rate), str(limit.burst), str(duration), "--tasks", str(tasks),
        "--priority", priority.name,
    ]  # fmt: skip
    pipe = asyncio.subprocess.PIPE
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=ROOT, stdin=pipe, stdout=pipe
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"ready\n"
    except BaseException:
        kill(procs)
        raise
    return procs


async def run_workers(procs: list[Proc], start_at: float) -> list[dict[str, list[float]]]:
    """Tell the workers when to start; their results once they are done."""
    try:
        outputs = await asyncio.gather(
            *(asyncio.wait_for(p.communicate(f"{start_at!r}\n".encode()), 60) for p in procs)
        )
    finally:
        kill(procs)
    assert [p.returncode for p in procs] == [0] * len(procs)
    return [json.loads(out.splitlines()[-1]) for out, _ in outputs]


def kill(procs: list[Proc]) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.kill()


async def evalsha_calls(redis: Redis) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


# 1. Exact across processes


@pytest.mark.multiprocess
async def test_four_processes_share_one_bucket_exactly(settings: Settings, redis: Redis) -> None:
    limit, duration = Limit(rate=5.0, burst=5), 6.0
    procs = await spawn_workers(4, settings.require_redis_url(), 101, "test", limit, duration)
    calls_before = await evalsha_calls(redis)
    start_at = time.time() + 0.3

    results = await run_workers(procs, start_at)

    calls = await evalsha_calls(redis) - calls_before
    grants = sorted(t for r in results for t in r["grants"])
    assert all(r["grants"] for r in results), "every process got tokens"
    in_run = [t for t in grants if start_at <= t <= start_at + duration]
    allowed_total = limit.burst + limit.rate * duration
    steady = in_run[limit.burst :]  # after the initial burst
    report = {
        "grants": len(in_run),
        "allowed": allowed_total,
        "steady_rate": round((len(steady) - 1) / (steady[-1] - steady[0]), 2),
        "allowed_rate": limit.rate,
        "per_process": [len(r["grants"]) for r in results],
        "script_calls_per_grant": round(calls / len(grants), 2),
    }
    for window in (1.0, 3.0):
        most = max_in_window(grants, window)
        report[f"max_in_{window:g}s"] = most
        report[f"allowed_in_{window:g}s"] = limit.burst + limit.rate * window
        assert most <= limit.burst + limit.rate * window + 1, report
    print(f"\nrate limiter, 4 processes: {report}")
    assert len(in_run) <= allowed_total + 1, report
    assert len(in_run) >= 0.9 * allowed_total, report
    # Callers sleep until their token, they do not spin: a handful of script runs per grant.
    assert calls <= 10 * len(grants), report


# 2. Sellers are independent


@pytest.mark.multiprocess
async def test_a_saturated_seller_does_not_slow_another(
    settings: Settings, limiter: RateLimiter
) -> None:
    duration = 3.5
    limit_a = DEFAULT_LIMITS[FEEDBACKS]
    procs = await spawn_workers(
        2, settings.require_redis_url(), 201, FEEDBACKS, limit_a, duration, tasks=2
    )
    start_at = time.time() + 0.3
    end_at = start_at + duration
    local_a: list[float] = []
    b_waits: list[float] = []

    async def hammer_a() -> None:
        while (remaining := end_at - time.time()) > 0:
            try:
                await limiter.acquire(201, FEEDBACKS, timeout=remaining)
            except RateLimitTimeout:
                return
            local_a.append(time.time())

    async def pace_b() -> None:
        await asyncio.sleep(start_at + 0.5 - time.time())  # A is saturated by now
        for _ in range(6):
            b_waits.append(await limiter.acquire(202, FEEDBACKS, timeout=1.0))
            await asyncio.sleep(0.5)

    workers = asyncio.ensure_future(run_workers(procs, start_at))
    await asyncio.sleep(start_at - time.time())
    await asyncio.gather(*(hammer_a() for _ in range(4)), pace_b())
    results = await workers

    a_grants = local_a + [t for r in results for t in r["grants"]]
    a_in_run = [t for t in a_grants if start_at <= t <= end_at]
    a_allowed = limit_a.burst + limit_a.rate * duration
    assert len(b_waits) == 6
    assert max(b_waits) < 0.05, b_waits
    assert 0.9 * a_allowed <= len(a_in_run) <= a_allowed + 1, (len(a_in_run), a_allowed)
    assert max(w for r in results for w in r["waits"]) > 0.5  # A's callers really queued


# 3. Replies go first


@pytest.mark.multiprocess
async def test_a_reply_takes_the_next_token_ahead_of_queued_syncs(
    settings: Settings, limiter: RateLimiter
) -> None:
    limit, duration = Limit(rate=4.0, burst=1), 3.5
    interval = 1 / limit.rate
    procs = await spawn_workers(
        2, settings.require_redis_url(), 301, "test", limit, duration, tasks=2
    )
    start_at = time.time() + 0.3
    workers = asyncio.ensure_future(run_workers(procs, start_at))
    await asyncio.sleep(start_at + 0.6 - time.time())  # four SYNC loops saturate the bucket

    replies: list[tuple[float, float, float]] = []  # (asked at, granted at, waited)
    for _ in range(5):
        asked = time.time()
        waited = await limiter.acquire(301, "test", limit=limit, priority=Priority.REPLY)
        replies.append((asked, time.time(), waited))
        await asyncio.sleep(random.uniform(0.2, 0.4))
    results = await workers

    sync_grants = sorted(t for r in results for t in r["grants"])
    sync_waits = [w for r in results for w in r["waits"]]
    for asked, granted, waited in replies:
        assert waited <= 1.5 * interval, replies
        # Nobody else got a token while the reply waited (one may have been decided just before).
        assert sum(asked < t < granted for t in sync_grants) <= 1, (asked, granted)
    mean_reply = sum(w for *_, w in replies) / len(replies)
    mean_sync = sum(sync_waits) / len(sync_waits)
    assert mean_sync > 2 * mean_reply, (mean_sync, mean_reply)
    # Priorities reorder the queue; they never add tokens.
    everything = sync_grants + [granted for _, granted, _ in replies]
    assert max_in_window(everything, 1.0) <= limit.burst + limit.rate + 1


async def test_a_reply_that_times_out_or_is_cancelled_stops_holding_syncs_back(
    limiter: RateLimiter, redis: Redis
) -> None:
    limit = Limit(rate=1.0, burst=1)
    _, waiters = limiter._keys(302, "test")
    await limiter.acquire(302, "test", limit=limit)

    with pytest.raises(RateLimitTimeout):
        await limiter.acquire(302, "test", limit=limit, priority=Priority.REPLY, timeout=0.2)
    assert await redis.zcard(waiters) == 0

    task = asyncio.ensure_future(limiter.acquire(302, "test", limit=limit, priority=Priority.REPLY))
    await asyncio.sleep(0.1)
    assert await redis.zcard(waiters) == 1  # registered while it waits
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await redis.zcard(waiters) == 0


@pytest.mark.multiprocess
async def test_a_crashed_reply_waiter_expires(settings: Settings, limiter: RateLimiter) -> None:
    limit = Limit(rate=1.0, burst=1)
    await limiter.acquire(303, "test", limit=limit)  # empty: the next token is 1 s away
    (proc,) = await spawn_workers(
        1, settings.require_redis_url(), 303, "test", limit, 30, priority=Priority.REPLY
    )
    assert proc.stdin is not None
    proc.stdin.write(f"{time.time()!r}\n".encode())
    await proc.stdin.drain()
    waiters = limiter._keys(303, "test")[1]
    redis = create_redis(settings.require_redis_url())
    while await redis.zcard(waiters) == 0:  # noqa: ASYNC110 - polling another process
        await asyncio.sleep(0.02)
    kill([proc])  # SIGKILL: it never deregisters

    waited = await limiter.acquire(303, "test", limit=limit, timeout=10.0)

    # Held back until the dead waiter's registration expired, then served: never forever.
    assert 1.0 <= waited <= 1.0 + ratelimit.REPLY_GRACE + 0.5
    assert await redis.zcard(waiters) == 0
    await redis.aclose()


# 4. Penalty (429 with X-Ratelimit-Retry)


@pytest.mark.multiprocess
async def test_a_penalty_stops_every_client_then_grants_resume(
    settings: Settings, limiter: RateLimiter
) -> None:
    limit = Limit(rate=10.0, burst=10)
    other = RateLimiter(create_redis(settings.require_redis_url()))
    procs = await spawn_workers(1, settings.require_redis_url(), 401, FEEDBACKS, limit, 3.5)
    try:
        penalized_at = time.time()
        await limiter.penalize(401, FEEDBACKS, 2.0)
        await other.penalize(401, FEEDBACKS, 0.5)  # a shorter penalty never shortens one
        # Other buckets are not affected.
        assert await limiter.acquire(401, CHAT, timeout=0) < 0.05
        assert await limiter.acquire(402, FEEDBACKS, timeout=0) < 0.05

        local: list[float] = []

        async def hammer(rl: RateLimiter) -> None:
            while (remaining := penalized_at + 3.5 - time.time()) > 0:
                try:
                    await rl.acquire(401, FEEDBACKS, limit=limit, timeout=remaining)
                except RateLimitTimeout:
                    return
                local.append(time.time())

        results, *_ = await asyncio.gather(
            run_workers(procs, time.time()), hammer(limiter), hammer(other)
        )
    finally:
        kill(procs)
        await other.redis.aclose()

    grants = sorted(local + results[0]["grants"])
    first = grants[0]
    assert first >= penalized_at + 2.0 - 0.02, first - penalized_at
    assert first <= penalized_at + 2.3, first - penalized_at
    # The marketplace's bucket was empty at the 429: one token at the end, then the steady rate.
    after = [t for t in grants if t <= first + 1.0]
    assert 1 + 0.8 * limit.rate <= len(after) <= 1 + limit.rate + 1, len(after)


# 5. Fail closed


async def test_an_unreachable_redis_never_grants_and_times_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = quick_redis(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    limiter = RateLimiter(redis, defaults=DEFAULT_LIMITS)
    try:
        started = time.monotonic()
        with (
            caplog.at_level(logging.WARNING, "app.core.ratelimit"),
            pytest.raises(RateLimitTimeout),
        ):
            await limiter.acquire(501, FEEDBACKS, timeout=1.0)
        elapsed = time.monotonic() - started
        await limiter.penalize(501, FEEDBACKS, 5.0)  # best effort: logs, does not raise
    finally:
        await redis.aclose()

    assert 1.0 <= elapsed < 2.0
    failures = [r for r in caplog.records if "Redis failed" in r.getMessage()]
    assert 3 <= len(failures) <= 20  # backed off exponentially, not spinning


@pytest.mark.multiprocess
async def test_a_redis_that_stops_stops_the_grants_until_it_is_back(tmp_path: Path) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path / "r", port, persist=False)
    server.start()
    redis = quick_redis(server.url)
    limiter = RateLimiter(redis)
    limit = Limit(rate=100.0, burst=100)  # plenty: only Redis can say no
    try:
        for _ in range(3):
            assert await limiter.acquire(502, "test", limit=limit, timeout=1.0) < 0.05

        server.stop()
        with pytest.raises(RateLimitTimeout):
            await limiter.acquire(502, "test", limit=limit, timeout=1.0)
        waiting = asyncio.ensure_future(limiter.acquire(502, "test", limit=limit))
        await asyncio.sleep(0.5)
        assert not waiting.done()

        server = EmbeddedRedis(tmp_path / "r", port, persist=False)  # empty, no scripts loaded
        server.start()
        waited = await asyncio.wait_for(waiting, 5.0)
        assert waited >= 0.5
        assert await limiter.acquire(502, "test", limit=limit, timeout=1.0) < 0.05
    finally:
        server.stop()
        await redis.aclose()


# 6. Limits


def test_replies_come_before_syncs() -> None:
    assert Priority.REPLY < Priority.SYNC


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("nan"), 1), (1, 0)])
def test_a_limit_must_be_positive(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Limit(rate=rate, burst=burst)


async def test_the_default_burst_is_granted_at_once_and_no_more(limiter: RateLimiter) -> None:
    for category, limit in DEFAULT_LIMITS.items():
        for _ in range(limit.burst):
            assert await limiter.acquire(601, category, timeout=0) < 0.05
        with pytest.raises(RateLimitTimeout):
            await limiter.acquire(601, category, timeout=0)

    waited = await limiter.acquire(601, FEEDBACKS)
    assert 0.2 <= waited <= 0.45  # the next token comes 1/3 s after the burst


async def test_an_override_limit_is_honoured(limiter: RateLimiter) -> None:
    slow = Limit(rate=2.0, burst=2)
    for _ in range(2):
        await limiter.acquire(602, FEEDBACKS, limit=slow, timeout=0)
    with pytest.raises(RateLimitTimeout):
        await limiter.acquire(602, FEEDBACKS, limit=slow, timeout=0)
    assert 0.35 <= await limiter.acquire(602, FEEDBACKS, limit=slow) <= 0.65

    generous = Limit(rate=50.0, burst=20)
    for _ in range(20):
        assert await limiter.acquire(603, FEEDBACKS, limit=generous, timeout=0) < 0.05


async def test_an_unknown_category_needs_a_limit(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError, match="no default limit"):
        await limiter.acquire(604, "ads")
    assert await limiter.acquire(604, "ads", limit=Limit(1.0, 1), timeout=0) < 0.05


async def test_keys_expire_when_idle(limiter: RateLimiter, redis: Redis) -> None:
    limit = Limit(rate=2.0, burst=4)
    for _ in range(4):
        await limiter.acquire(605, "test", limit=limit)
    bucket, waiters = limiter._keys(605, "test")
    # Four tokens refill in 2 s; after that the bucket is full, the same as no key at all.
    assert 2000 < await redis.pttl(bucket) <= 3000 + 100

    task = asyncio.ensure_future(limiter.acquire(605, "test", limit=limit, priority=Priority.REPLY))
    await asyncio.sleep(0.05)
    assert 0 < await redis.pttl(waiters) <= 4000  # wait + grace + 1 s
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await limiter.penalize(606, "test", 5.0)
    bucket, _ = limiter._keys(606, "test")
    assert await redis.pttl(bucket) > 5000
    assert await redis.keys("sellerdesk:rl:*") != []
    assert all([await redis.pttl(k) > 0 for k in await redis.keys("sellerdesk:rl:*")])
