"""Hostile input on every operation of the API: never a 500, always a 4xx in the envelope with
the request id.

The cases are generated from the app's own OpenAPI schema: every path id, every query parameter
and every field of a valid request body (`BODIES`, one per operation that takes one) is replaced,
one at a time, by each hostile value of its kind — NUL bytes and lone surrogates for text (Postgres
stores neither), numbers outside Postgres' `bigint` for integers. The ids in paths and bodies are
the caller's real rows, so a value that got past validation would reach the database.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from tests import factories
from tests.marketplace import Marketplace

OPENAPI = create_app(Settings(env="test")).openapi()
HOSTILE_TEXT = {"nul": "a\x00b", "only nul": "\x00", "lone surrogate": "x\ud800"}
HOSTILE_INT = {"2^63": 2**63, "-2^63-1": -(2**63) - 1, "10^40": 10**40, "zero": 0, "minus one": -1}
# Query strings and paths carry bytes: a NUL, and bytes that are not UTF-8 (the server reads
# those as U+FFFD, so they may be valid text: they need only not be a 500).
HOSTILE_RAW = {"nul": "a%00b", "encoded surrogate": "x%ED%A0%80", "not utf-8": "x%FF"}
MAY_PASS = {"encoded surrogate", "not utf-8"}
HOSTILE_PATH = {**{k: str(v) for k, v in HOSTILE_INT.items()}, "text": "abc", **HOSTILE_RAW}

# A valid body per operation that takes one; "<name>" is one of the caller's ids (`World`).
BODIES: dict[tuple[str, str], Any] = {
    ("post", "/api/v1/auth/login"): {"email": "nobody@example.com", "password": "wrong password"},
    ("post", "/api/v1/auth/tokens"): {"name": "ci", "expires_in_days": 30},
    ("post", "/api/v1/interactions/bulk"): {
        "ids": ["<review>"],
        "changes": {"priority": "high", "priority_reason": "VIP buyer", "assignee_id": "<user>"},
    },
    ("patch", "/api/v1/interactions/{interaction_id}"): {
        "status": "closed",
        "priority": "low",
        "priority_reason": "spam",
        "assignee_id": "<user>",
        "is_read": True,
    },
    ("patch", "/api/v1/settings"): {
        "sla_targets": {"review": {"default": 60, "by_intent": {"other": 30}}},
        "sync_interval_minutes": 10,
        "reply_pending_window_minutes": 60,
        "draft_provider": "offline",
        "draft_model": "model",
        "draft_api_key": "sk-test",
        "auto_reply_policy": {"enabled": True, "channels": ["review"], "min_rating": 4},
        "rate_limits": {"feedbacks": {"rate": 1, "burst": 2}},
    },
    ("post", "/api/v1/marketplace-accounts"): {
        "marketplace": "wildberries",
        "name": "main",
        "token": "token-0123456789",
    },
    ("put", "/api/v1/marketplace-accounts/{account_id}/token"): {"token": "token-0123456789"},
    ("post", "/api/v1/sync"): {"channel": "review", "full_resync": False},
    ("post", "/api/v1/links/recompute"): {"interaction_ids": ["<review>"]},
    ("post", "/api/v1/interactions/{interaction_id}/reply"): {
        "text": "Спасибо за отзыв!",
        "action": "answer",
    },
    ("post", "/api/v1/replies/bulk"): {
        "items": [{"interaction_id": "<review>", "text": "Спасибо!", "idempotency_key": "k-1"}]
    },
}


@dataclass(frozen=True)
class Case:
    where: str  # what was replaced, e.g. "body.changes.assignee_id = 2^63"
    path: str
    query: str = ""
    body: Any = None

    @property
    def may_pass(self) -> bool:
        return self.where.rsplit(" = ", 1)[1] in MAY_PASS


def operations() -> Iterator[tuple[str, str]]:
    for path, methods in OPENAPI["paths"].items():
        yield from ((method, path) for method in methods if path.startswith("/api/"))


def with_input() -> list[tuple[str, str]]:
    """The operations that take a path id, a query parameter or a body."""
    return sorted(
        (m, p) for m, p in operations()
        if OPENAPI["paths"][p][m].get("parameters") or (m, p) in BODIES
    )  # fmt: skip


def cases(method: str, path: str, ids: dict[str, int]) -> Iterator[Case]:
    operation = OPENAPI["paths"][path][method]
    params = operation.get("parameters", [])
    real_path = path
    for p in params:
        if p["in"] == "path":
            real_path = real_path.replace("{" + p["name"] + "}", str(ids["review"]))
    body = _resolve(BODIES.get((method, path)), ids)
    for p in params:
        if p["in"] == "path":
            for name, value in HOSTILE_PATH.items():
                hostile = path.replace("{" + p["name"] + "}", value)
                for other in params:  # the other path ids stay real
                    hostile = hostile.replace("{" + other["name"] + "}", str(ids["review"]))
                yield Case(f"path.{p['name']} = {name}", hostile, body=body)
        elif p["in"] == "query":
            values = {**HOSTILE_RAW}
            if "integer" in json.dumps(p["schema"]):
                values |= {k: str(v) for k, v in HOSTILE_INT.items()}
            for name, value in values.items():
                yield Case(f"query.{p['name']} = {name}", real_path, f"{p['name']}={value}", body)
    if body is not None:
        for where, hostile in _hostile_bodies(body):
            yield Case(f"body{where}", real_path, body=hostile)


def _resolve(template: Any, ids: dict[str, int]) -> Any:
    if isinstance(template, str) and template.startswith("<"):
        return ids[template.strip("<>")]
    if isinstance(template, dict):
        return {k: _resolve(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [_resolve(v, ids) for v in template]
    return template


def _hostile_bodies(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """(where, body) with one leaf replaced by each hostile value of its kind."""
    if isinstance(value, dict):
        for key, item in value.items():
            for inner, hostile in _hostile_bodies(item, f"{where}.{key}"):
                yield inner, {**value, key: hostile}
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for inner, hostile in _hostile_bodies(item, f"{where}[{index}]"):
                yield inner, [*value[:index], hostile, *value[index + 1 :]]
    elif isinstance(value, str):
        for name, text in HOSTILE_TEXT.items():
            yield f"{where} = {name}", text
    elif isinstance(value, int) and not isinstance(value, bool):
        for name, number in HOSTILE_INT.items():
            yield f"{where} = {name}", number


def test_every_operation_that_takes_a_body_has_one_here() -> None:
    takes_body = {(m, p) for m, p in operations() if "requestBody" in OPENAPI["paths"][p][m]}
    assert takes_body == set(BODIES)


@pytest.fixture
async def ids(
    session: AsyncSession, client: AsyncClient, marketplace: Marketplace, settings: Settings
) -> tuple[dict[str, int], dict[str, str]]:
    seller, headers = await factories.operator(session, client, "hostile@example.com")
    await factories.connect_wildberries(session, seller, settings)
    review = await factories.create_interaction(session, seller)
    user = (await client.get("/api/v1/auth/me", headers=headers)).json()["id"]
    return {"review": review.id, "user": user}, headers


@pytest.mark.parametrize(("method", "path"), with_input())
async def test_hostile_input_is_a_4xx_in_the_envelope(
    app: FastAPI,
    client: AsyncClient,
    ids: tuple[dict[str, int], dict[str, str]],
    method: str,
    path: str,
) -> None:
    known, headers = ids
    failures, tried = [], 0
    for case in cases(method, path, known):
        tried += 1
        url = case.path + (f"?{case.query}" if case.query else "")
        content = None if case.body is None else json.dumps(case.body)  # \ud800 stays escaped
        response = await client.request(
            method.upper(),
            url,
            content=content,
            headers=headers | {"content-type": "application/json"},
        )
        accepted = case.may_pass and response.status_code < 400
        if not accepted and (not 400 <= response.status_code < 500 or not _envelope(response)):
            failures.append(f"{case.where}: {response.status_code} {response.text[:200]}")
    assert tried > 0
    assert not failures, f"{len(failures)} of {tried} cases:\n" + "\n".join(failures)


def _envelope(response: Any) -> bool:
    body = response.json()
    request_id = response.headers.get("x-request-id")
    return bool(body.get("error", {}).get("code")) and body.get("request_id") == request_id
