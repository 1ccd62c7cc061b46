import re

from fastapi import FastAPI
from httpx import AsyncClient


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
