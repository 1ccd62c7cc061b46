"""Sandbox tests run the ASGI app in process (no Postgres, no Redis, no network).

The clock is frozen at a fixed instant, so generated data are reproducible and rate-limit
buckets refill only when a test advances the clock through the admin API.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.sandbox.app import create_sandbox_app
from app.sandbox.config import SandboxConfig

FROZEN_AT = 1_750_000_000.0  # 2025-06-15T15:06:40Z
MakeSeller = Callable[..., Awaitable[dict[str, Any]]]


def sandbox_config(**overrides: Any) -> SandboxConfig:
    return SandboxConfig(clock_start=FROZEN_AT, clock_frozen=True, **overrides)


def client_for(app: FastAPI) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://sandbox")


@pytest.fixture
def sandbox_app() -> FastAPI:
    return create_sandbox_app(sandbox_config())


@pytest.fixture
async def wb(sandbox_app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with client_for(sandbox_app) as client:
        yield client


async def create_seller(client: AsyncClient, **spec: Any) -> dict[str, Any]:
    """A seller with small defaults; `limits=False` switches its rate limits off."""
    limits = spec.pop("limits", True)
    body = {"name": "shop", "seed": 7, "reviews": 200, "questions": 80, "chats": 12} | spec
    response = await client.post("/_sandbox/sellers", json=body)
    assert response.status_code in (200, 201), response.text
    seller: dict[str, Any] = response.json()
    if not limits:
        url = f"/_sandbox/sellers/{seller['seller_id']}/rate-limits"
        assert (await client.put(url, json={"enabled": False})).status_code == 200
    seller["headers"] = {"Authorization": seller["token"]}
    return seller


@pytest.fixture
def make_seller(wb: AsyncClient) -> MakeSeller:
    async def make(**spec: Any) -> dict[str, Any]:
        return await create_seller(wb, **spec)

    return make


async def advance(client: AsyncClient, seconds: float) -> None:
    response = await client.post("/_sandbox/clock", json={"advance_seconds": seconds})
    assert response.status_code == 200


async def all_items(
    client: AsyncClient, headers: dict[str, str], channel: str, answered: bool, **query: Any
) -> list[dict[str, Any]]:
    """Every review or question of one list, paged with take/skip."""
    path, key, take = (
        ("/api/v1/feedbacks", "feedbacks", 5000)
        if channel == "review"
        else ("/api/v1/questions", "questions", 1000)
    )
    items: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"isAnswered": str(answered).lower(), "take": take}
        params |= {"skip": len(items)} | query
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()["data"][key]
        items += page
        if len(page) < take:
            return items


async def all_events(client: AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    params: dict[str, int] = {}
    while True:
        response = await client.get("/api/v1/seller/events", params=params, headers=headers)
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        if result["totalEvents"] == 0:
            return events
        events += result["events"]
        params = {"next": result["next"]}
