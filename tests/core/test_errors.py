import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories


async def test_unknown_route_is_a_404_envelope_with_the_request_id(client: AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here", headers={"X-Request-ID": "req-123"})

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not Found", "details": None},
        "request_id": "req-123",
    }
    assert response.headers["x-request-id"] == "req-123"


async def test_a_request_id_is_generated_when_missing_or_unsafe(client: AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})

    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_wrong_method_is_a_405_envelope(client: AsyncClient) -> None:
    response = await client.delete("/healthz")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_an_unexpected_error_is_a_500_envelope_without_internals(
    app: FastAPI, client: AsyncClient
) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    response = await client.get("/boom", headers={"X-Request-ID": "req-500"})

    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "Internal server error", "details": None},
        "request_id": "req-500",
    }
    assert response.headers["x-request-id"] == "req-500"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


async def test_openapi_docs_are_served(client: AsyncClient) -> None:
    docs = await client.get("/docs")
    spec = await client.get("/openapi.json")

    assert docs.status_code == 200
    assert "/api/v1/auth/login" in spec.json()["paths"]
    # The inbox filters are parsed by app.core.query, not FastAPI, and still documented.
    inbox = spec.json()["paths"]["/api/v1/interactions"]["get"]["parameters"]
    documented = {p["name"]: p for p in inbox}
    assert {"channel", "status", "rating", "q", "sort", "limit", "cursor"} <= documented.keys()
    channel_schema = str(documented["channel"]["schema"])
    assert "array" in channel_schema
    assert "review" in channel_schema


async def _chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 1024 + 1):
        yield b"x" * 1024


# (method, path, what else the request sends): every way the API answers with an error.
ERROR_PATHS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "401 no credentials": ("GET", "/api/v1/interactions", {}),
    "404 unknown route": ("GET", "/api/v1/nothing-here", {}),
    "404 unknown item": ("GET", "/api/v1/replies/999999999", {"auth": True}),
    "405 wrong method": ("DELETE", "/healthz", {}),
    "413 declared body": ("POST", "/api/v1/auth/login", {"content": b"x" * (2 << 20)}),
    "413 chunked body": ("POST", "/api/v1/auth/login", {"chunked": 2 << 20}),
    "422 invalid body": ("POST", "/api/v1/auth/login", {"json": {"email": 1}}),
    "422 malformed json": ("POST", "/api/v1/auth/login", {"content": b"{"}),
    "500 bug": ("GET", "/boom", {}),
}


@pytest.mark.parametrize("case", ERROR_PATHS)
async def test_every_error_body_carries_the_request_id(
    app: FastAPI, client: AsyncClient, session: AsyncSession, case: str
) -> None:
    """The 503s are in tests/core/test_unavailable.py and test_lock_conflicts.py."""

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    method, path, extra = ERROR_PATHS[case]
    extra = dict(extra)
    headers = {"X-Request-ID": f"req-{case.split()[0]}"}
    if "chunked" in extra:  # no Content-Length: counted as it arrives
        extra["content"] = _chunks(extra.pop("chunked"))
    if extra.pop("auth", False):
        headers |= (await factories.operator(session, client, "ids@example.com"))[1]
    if isinstance(extra.get("content"), bytes) or "json" in extra:
        headers["Content-Type"] = "application/json"

    response = await client.request(method, path, headers=headers, **extra)

    assert response.status_code == int(case.split()[0]), response.text
    assert response.json()["request_id"] == headers["X-Request-ID"]
    assert response.headers["x-request-id"] == headers["X-Request-ID"]


def test_no_handler_runs_outside_the_request_id(app: FastAPI) -> None:
    """Starlette runs a handler for Exception or 500 in ServerErrorMiddleware, outside every
    middleware of ours: its body would have no request id."""
    assert Exception not in app.exception_handlers
    assert 500 not in app.exception_handlers
