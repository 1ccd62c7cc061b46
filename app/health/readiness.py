"""Readiness checks: database, Redis, migrations at head, beat's heartbeat through the control
lane, and a live consumer on every work lane (`app.worker.lanes`)."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache, partial
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.worker import heartbeat
from app.worker.lanes import LANES

CHECK_TIMEOUT_SECONDS = 3.0
ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


class CheckResult(BaseModel):
    ok: bool
    detail: str


class NotReadyError(Exception):
    pass


@lru_cache
def migration_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_heads())


async def check_database(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return "reachable"


async def check_migrations(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        migrated = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        current: frozenset[str] = frozenset()
        if migrated:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            current = frozenset(r[0] for r in rows)
    heads = migration_heads()
    if current != heads:
        raise NotReadyError(f"at {sorted(current) or 'nothing'}, head is {sorted(heads)}")
    return f"at head {', '.join(sorted(heads))}"


async def check_redis(redis: Redis) -> str:
    await redis.ping()
    return "reachable"


async def check_heartbeat(redis: Redis, max_age: float) -> str:
    """Beat scheduled `health.heartbeat` and the control lane ran it."""
    last = await heartbeat.last_beat(redis)
    if last is None:
        raise NotReadyError("no worker heartbeat yet (are beat and the control worker running?)")
    age = time.time() - last
    if age > max_age:
        raise NotReadyError(f"last worker heartbeat {age:.0f}s ago (limit {max_age:.0f}s)")
    return f"last worker heartbeat {age:.1f}s ago"


async def check_lane(redis: Redis, lane: str, max_age: float) -> str:
    """Some worker consumes the lane: its main process stamped it within `max_age`."""
    consumers = await heartbeat.lane_consumers(redis, lane)
    queued = await heartbeat.waiting(redis, lane)
    now = time.time()
    live = sorted(now - at for at in consumers.values() if now - at <= max_age)
    if not live:
        seen = f"last seen {now - max(consumers.values()):.0f}s ago" if consumers else "none seen"
        raise NotReadyError(f"no live consumer ({seen}); {queued} waiting")
    return f"{len(live)} consumer(s), newest {live[0]:.1f}s ago; {queued} waiting"


async def _run(check: Callable[[], Awaitable[str]]) -> CheckResult:
    try:
        detail = await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        return CheckResult(ok=True, detail=detail)
    except TimeoutError:
        return CheckResult(ok=False, detail=f"timed out after {CHECK_TIMEOUT_SECONDS:.0f}s")
    except NotReadyError as exc:
        return CheckResult(ok=False, detail=str(exc))
    except Exception as exc:  # any failure of a dependency is a failed check, never a 500
        return CheckResult(ok=False, detail=f"{type(exc).__name__}: {exc}"[:300])


async def run_checks(
    engine: AsyncEngine, redis: Redis, heartbeat_max_age: float
) -> dict[str, CheckResult]:
    checks: dict[str, Callable[[], Awaitable[str]]] = {
        "database": lambda: check_database(engine),
        "migrations": lambda: check_migrations(engine),
        "redis": lambda: check_redis(redis),
        "worker_heartbeat": lambda: check_heartbeat(redis, heartbeat_max_age),
    }
    for lane in LANES:
        checks[f"lane_{lane.name}"] = partial(check_lane, redis, lane.name, heartbeat_max_age)
    results = await asyncio.gather(*(_run(c) for c in checks.values()))
    return dict(zip(checks, results, strict=True))
