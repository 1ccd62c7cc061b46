"""Cursors come back from clients, so they can be anything: on every list that takes one, any
cursor the list did not write is the same 422 `invalid_cursor`."""

import base64
import json
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import encode_cursor
from tests import factories

LISTS = {
    "inbox priority": "/api/v1/interactions?sort=priority",
    "inbox newest": "/api/v1/interactions?sort=newest",
    "inbox oldest": "/api/v1/interactions?sort=oldest",
    "inbox relevance": "/api/v1/interactions?q=товар&sort=relevance",
    "sync runs": "/api/v1/sync/runs",
}
FORGED: list[Any] = [
    {},
    [],
    None,
    "priority",
    [2**63],
    [0],
    ["priority"],
    ["priority", 1, None],
    ["priority", 99999, None, 1],
    ["priority", 1, None, 2**63],
    ["priority", 1, "yesterday", 1],
    ["priority", "1; drop table", None, 1],
    ["newest", "2026-01-01T00:00:00", 1],  # no time zone: not one we wrote
    ["newest", "2026-01-01T00:00:00+00:00", -5],
    ["oldest", 1e400, 1],
    ["relevance", "NaN", 1, 1],
    ["relevance", 0.5, 1, 2**64],
    ["relevance", 0.5, 1, 1, 1],
]
GARBAGE = ["@@@", "not-a-cursor", "x" * 10_000, "%00", "é", base64.urlsafe_b64encode(b"{").decode()]


def _raw(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("name", LISTS)
async def test_a_cursor_the_list_did_not_write_is_422_invalid_cursor(
    session: AsyncSession, client: AsyncClient, name: str
) -> None:
    seller, headers = await factories.operator(session, client, "cursors@example.com")
    for _ in range(3):
        await factories.create_interaction(session, seller, text="хороший товар")
    url = LISTS[name]
    # The real cursor of every other list and sort order.
    others = [
        page["next_cursor"]
        for other, other_url in LISTS.items()
        if other != name
        and (page := (await client.get(f"{other_url}&limit=1".replace("runs&", "runs?"),
                                       headers=headers)).json())["next_cursor"]
    ]  # fmt: skip
    cursors = [*GARBAGE, *map(_raw, FORGED), *others]

    for cursor in cursors:
        separator = "&" if "?" in url else "?"
        response = await client.get(f"{url}{separator}cursor={cursor}", headers=headers)
        assert response.status_code == 422, (cursor, response.text)
        assert response.json()["error"]["code"] == "invalid_cursor", cursor
    assert len(others) >= 3


async def test_the_lists_own_cursors_still_page(session: AsyncSession, client: AsyncClient) -> None:
    seller, headers = await factories.operator(session, client, "cursor-pages@example.com")
    made = [await factories.create_interaction(session, seller) for _ in range(3)]
    first = (await client.get("/api/v1/interactions?sort=newest&limit=2", headers=headers)).json()
    second = await client.get(
        f"/api/v1/interactions?sort=newest&limit=2&cursor={first['next_cursor']}", headers=headers
    )

    assert [i["id"] for i in first["items"] + second.json()["items"]] == [
        r.id for r in reversed(made)
    ]
    assert encode_cursor(["newest"]) != first["next_cursor"]
