"""A request whose transaction lost a lock conflict is run again, body and all, and answered as
if nothing happened; when the conflicts do not stop, 503 with Retry-After, never a 500.

The conflicts are real Postgres errors (SQLSTATE 40P01 and 40001 raised by the server); a real
deadlock between a request and another transaction is in tests/dispatch/test_lock_order.py."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
from fastapi import Body, FastAPI
from httpx import AsyncClient
from sqlalchemy import text

from app.core.deps import SessionDep
from app.core.retry import ATTEMPTS

RAISE = "DO $$ BEGIN RAISE EXCEPTION 'probe' USING ERRCODE = '{code}'; END $$"


def add_probe(app: FastAPI) -> list[dict[str, Any]]:
    """POST /probe/conflict?times=N&code=…: the first N runs fail with that SQLSTATE; the
    answer echoes the body and counts the runs. Returns the list of runs' bodies."""
    runs: list[dict[str, Any]] = []

    @app.post("/probe/conflict")
    async def conflict(
        session: SessionDep, times: int, code: str, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        runs.append(body)
        await session.execute(text("SELECT 1"))
        if len(runs) <= times:
            await session.execute(text(RAISE.format(code=code)))
        return {"runs": len(runs), "body": body}

    return runs


@pytest.mark.parametrize("code", ["40P01", "40001"])
async def test_a_lock_conflict_victim_is_run_again_with_its_body(
    app: FastAPI, client: AsyncClient, code: str
) -> None:
    runs = add_probe(app)

    response = await client.post(
        "/probe/conflict", params={"times": 2, "code": code}, json={"text": "привет"}
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"runs": 3, "body": {"text": "привет"}}
    assert runs == [{"text": "привет"}] * 3


async def test_a_chunked_body_is_replayed_too(app: FastAPI, client: AsyncClient) -> None:
    runs = add_probe(app)

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b'{"text": ', b'"two ', b'chunks"}'):
            yield part

    response = await client.post(
        "/probe/conflict",
        params={"times": 1, "code": "40P01"},
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 200, response.text
    assert runs == [{"text": "two chunks"}] * 2


async def test_conflicts_that_do_not_stop_are_a_503_with_retry_after(
    app: FastAPI, client: AsyncClient
) -> None:
    runs = add_probe(app)

    response = await client.post(
        "/probe/conflict",
        params={"times": 100, "code": "40P01"},
        json={},
        headers={"X-Request-ID": "req-contention"},
    )

    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.json()["error"]["details"] == {"reason": "contention"}
    assert response.headers["retry-after"] == "1"
    assert response.json()["request_id"] == "req-contention" == response.headers["x-request-id"]
    assert len(runs) == ATTEMPTS


async def test_other_database_errors_are_not_run_again(app: FastAPI, client: AsyncClient) -> None:
    runs = add_probe(app)

    response = await client.post("/probe/conflict", params={"times": 1, "code": "22012"}, json={})

    assert response.status_code == 500  # division_by_zero: a bug, not contention
    assert len(runs) == 1
