"""Several processes share one seller's bucket; the sandbox's own request log is the referee."""

import subprocess
import sys

import httpx
import pytest
from redis.asyncio import Redis

from app.core.config import Settings
from tests.services import ROOT

pytestmark = pytest.mark.multiprocess

PROCESSES, SECONDS = 3, 6.0
RATE, BURST = 3, 6  # the documented reviews+questions budget


def test_processes_sharing_a_bucket_never_exceed_the_limit_and_use_most_of_it(
    sandbox_url: str,
    settings: Settings,
    redis: Redis,
) -> None:
    admin = httpx.Client(base_url=sandbox_url)
    seller = admin.post("/_sandbox/sellers", json={"name": "hammered", "reviews": 50}).json()
    admin.delete(f"/_sandbox/sellers/{seller['seller_id']}/requests")
    argv = [settings.require_redis_url(), sandbox_url, seller["token"], "901", str(SECONDS)]

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.sync.hammer_worker", *argv],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    calls = sum(int(p.communicate(timeout=60)[0].strip() or 0) for p in procs)

    log = admin.get(f"/_sandbox/sellers/{seller['seller_id']}/requests").json()
    feedbacks = log["by_group"]["feedbacks"]
    assert feedbacks["max_in_any_1s"] <= BURST + RATE * 1
    assert feedbacks["max_in_any_10s"] <= BURST + RATE * 10
    # Most of the limit used, counted in the sandbox's log rather than against the wall clock
    # (the processes start and stop at their own moments): every whole second between the first
    # (the burst) and the last (partial) one holds about RATE requests.
    per_second = {s: n for s, group, n in log["per_second"] if group == "feedbacks"}
    timeline = [per_second.get(s, 0) for s in range(min(per_second), max(per_second) + 1)]
    steady = timeline[1:-1]
    assert len(steady) >= SECONDS - 2, timeline
    assert sum(steady) >= 0.9 * RATE * len(steady), (timeline, calls)
    assert feedbacks["status_counts"].get("429", 0) <= 2, feedbacks["status_counts"]
