"""Readiness checks: database, Redis, migrations at head, worker/beat heartbeat."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.health import heartbeat

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
    last = await heartbeat.last_beat(redis)
    if last is None:
        raise NotReadyError("no worker heartbeat yet (are the worker and beat running?)")
    age = time.time() - last
    if age > max_age:
        raise NotReadyError(f"last worker heartbeat {age:.0f}s ago (limit {max_age:.0f}s)")
    return f"last worker heartbeat {age:.1f}s ago"


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
    results = await asyncio.gather(*(_run(c) for c in checks.values()))
    return dict(zip(checks, results, strict=True))
