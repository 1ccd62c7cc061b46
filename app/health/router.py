from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.core.deps import EngineDep, RedisDep, SettingsDep
from app.core.errors import ErrorEnvelope, error_response
from app.health.readiness import CheckResult, run_checks

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, CheckResult]


@router.get("/healthz", response_model=Liveness)
async def healthz() -> Liveness:
    """The process is alive; says nothing about its dependencies."""
    return Liveness(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": ErrorEnvelope, "description": "A named check failed"}},
)
async def readyz(
    engine: EngineDep, redis: RedisDep, settings: SettingsDep
) -> Readiness | JSONResponse:
    checks = await run_checks(engine, redis, settings.heartbeat_max_age_seconds)
    failing = [name for name, result in checks.items() if not result.ok]
    if failing:
        return error_response(
            503,
            "not_ready",
            f"not ready: {', '.join(failing)}",
            {"failing": failing, "checks": {k: v.model_dump() for k, v in checks.items()}},
        )
    return Readiness(status="ready", checks=checks)
