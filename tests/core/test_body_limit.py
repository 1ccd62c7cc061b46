"""Request bodies over max_request_body_bytes are refused with 413 before they are read."""

import json
from collections.abc import AsyncIterator

from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from tests import factories

LIMIT = 1024 * 1024  # the default
CHUNK = 64 * 1024


class Body:
    """A streamed request body that records how much of it the server pulled."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pulled = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), CHUNK):
            chunk = self.data[start : start + CHUNK]
            self.pulled += len(chunk)
            yield chunk


def login_json(email: str, size: int) -> bytes:
    """A valid login body padded with JSON whitespace to exactly `size` bytes."""
    body = json.dumps({"email": email, "password": factories.PASSWORD}).encode()
    return body + b" " * (size - len(body))


def assert_too_large(response: Response) -> None:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["error"] == {
        "code": "payload_too_large",
        "message": f"the request body is larger than {LIMIT} bytes",
        "details": None,
    }
    assert body["request_id"] == response.headers["x-request-id"] == "req-413"


async def test_a_declared_too_large_body_is_refused_without_reading_it(
    client: AsyncClient,
) -> None:
    body = Body(b"x" * (LIMIT + 1))

    response = await client.post(
        "/api/v1/auth/login",
        content=body.chunks(),
        headers={
            "Content-Length": str(LIMIT + 1),
            "Content-Type": "application/json",
            "X-Request-ID": "req-413",
        },
    )

    assert_too_large(response)
    assert body.pulled == 0


async def test_a_declared_too_large_body_is_refused_where_the_route_reads_no_body(
    client: AsyncClient,
) -> None:
    for method, path in (("GET", "/healthz"), ("POST", "/api/v1/nothing-here")):
        response = await client.request(
            method, path, content=b"x" * (LIMIT + 1), headers={"X-Request-ID": "req-413"}
        )
        assert_too_large(response)


async def test_a_chunked_too_large_body_is_refused_once_the_limit_is_passed(
    client: AsyncClient,
) -> None:
    body = Body(b"[" + b"1," * LIMIT + b"1]")  # about 2 MiB, no Content-Length

    response = await client.post(
        "/api/v1/interactions/bulk",
        content=body.chunks(),
        headers={"Content-Type": "application/json", "X-Request-ID": "req-413"},
    )

    assert_too_large(response)
    assert LIMIT < body.pulled <= LIMIT + CHUNK  # stopped at the chunk that passed the limit


async def test_an_unparsable_content_length_is_counted_instead(client: AsyncClient) -> None:
    body = Body(b" " * (LIMIT + 1))

    response = await client.post(
        "/api/v1/auth/login",
        content=body.chunks(),
        headers={"Content-Length": "²".encode("latin-1"), "X-Request-ID": "req-413"},
    )

    assert_too_large(response)


async def test_a_body_of_exactly_the_limit_is_read_declared_or_chunked(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller = await factories.create_seller(session)
    await factories.create_user(session, seller, "big@example.com")
    data = login_json("big@example.com", LIMIT)
    headers = {"Content-Type": "application/json"}

    declared = await client.post("/api/v1/auth/login", content=data, headers=headers)
    chunked = await client.post("/api/v1/auth/login", content=Body(data).chunks(), headers=headers)
    one_more = await client.post(
        "/api/v1/auth/login", content=data + b" ", headers=headers | {"X-Request-ID": "req-413"}
    )

    assert declared.status_code == 200, declared.text
    assert chunked.status_code == 200, chunked.text
    assert declared.json()["access_token"]
    assert_too_large(one_more)


async def test_the_limit_is_configurable(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"max_request_body_bytes": 64}))
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        at_limit = await client.request("GET", "/healthz", content=b"x" * 64)
        over = await client.request("GET", "/healthz", content=b"x" * 65)

    assert at_limit.status_code == 200
    assert over.status_code == 413
    assert over.json()["error"]["message"] == "the request body is larger than 64 bytes"
