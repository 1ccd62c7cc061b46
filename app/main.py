"""FastAPI application factory. Engines and clients live on app.state for the app's lifetime."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import api_router
from app.auth.service import principal_cache
from app.core.body_limit import BodyLimitMiddleware
from app.core.config import Settings, get_settings
from app.core.db import Database, create_engine
from app.core.deadline import DeadlineMiddleware
from app.core.egress import EgressPolicy
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import RequestIdMiddleware
from app.core.redis import create_redis
from app.core.retry import RetryLockConflictsMiddleware
from app.core.security import SecretBox
from app.health.router import router as health_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.secret_box = SecretBox(settings.secrets_key.get_secret_value())
        app.state.principal_cache = principal_cache(settings)
        app.state.engine = create_engine(settings, pre_ping=False)
        app.state.database = Database(app.state.engine)
        app.state.redis = create_redis(settings.require_redis_url())
        # Where outbound requests may go (app/core/egress.py); tests inject their DNS here.
        app.state.egress = EgressPolicy.from_settings(settings)
        # Marketplace HTTP transport for the API's own calls (token checks); tests set the
        # sandbox's httpx.ASGITransport here, production leaves it None (the network).
        app.state.marketplace_transport = None
        try:
            yield
        finally:
            await app.state.redis.aclose()
            await app.state.engine.dispose()

    app = FastAPI(
        title="Sellerdesk",
        version="0.1.0",
        summary="Reviews, questions and buyer chats of marketplace sellers in one inbox.",
        lifespan=lifespan,
    )
    # The last added is the outermost. From the outside in: the request id (and the last-resort
    # error answer, so every error carries the id), the deadline (its 503 too), the body limit,
    # then the replay of lock-conflict victims (which records the body as the app reads it,
    # within the limit, and whose replays count against the deadline).
    app.add_middleware(RetryLockConflictsMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(DeadlineMiddleware, seconds=settings.request_timeout_seconds)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(api_router)
    return app


def asgi() -> FastAPI:
    """Entry point for `uvicorn --factory app.main:asgi`: logging first, then the app."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format, process="api")
    app = create_app(settings)
    # Modules, routes and schemas live as long as the process: keep them out of every GC pass,
    # so the collector's full passes stay short under load (they scanned all of it).
    gc.collect()
    gc.freeze()
    return app
