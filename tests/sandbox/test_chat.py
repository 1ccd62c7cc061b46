"""buyer-chat-api: chat list, event cursor, sending messages (wb-api.md §2)."""

import re
from typing import Any

import pytest
from httpx import AsyncClient

from app.sandbox.app import create_sandbox_app
from tests.sandbox.conftest import (
    MakeSeller,
    advance,
    all_events,
    client_for,
    create_seller,
    sandbox_config,
)

EVENT_KEYS = {
    "chatID", "eventID", "eventType", "isNewChat", "message", "source", "addTimestamp",
    "addTime", "sender", "clientName",
}  # fmt: skip
UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def form(**fields: str) -> dict[str, tuple[None, str]]:
    """Plain fields sent as multipart/form-data, as WB requires (httpx's `data=` alone would
    send application/x-www-form-urlencoded)."""
    return {name: (None, value) for name, value in fields.items()}


def assert_chat_400(response: Any, detail: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"status", "title", "origin", "detail", "requestId", "error"}
    assert (body["status"], body["title"], body["origin"]) == (400, "Bad Request", "proxy-chats")
    assert body["detail"] == detail


async def test_chat_list_returns_every_chat(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(chats=15, limits=False)

    response = await wb.get("/api/v1/seller/chats", headers=seller["headers"])

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"result", "errors"}
    assert body["errors"] is None
    assert len(body["result"]) == 15
    for chat in body["result"]:
        assert set(chat) == {"chatID", "replySign", "clientName", "goodCard", "lastMessage"}
        assert re.fullmatch(r"1:[0-9a-f-]{36}", chat["chatID"])
        assert set(chat["goodCard"]) == {"nmID", "price", "priceCurrency", "rid", "size"}
        assert set(chat["lastMessage"]) == {"text", "addTimestamp"}


async def test_the_event_cursor_pages_to_the_end(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(chats=30, limits=False)
    headers = seller["headers"]

    events = await all_events(wb, headers)
    chats = (await wb.get("/api/v1/seller/chats", headers=headers)).json()["result"]
    summary = (await wb.get(f"/_sandbox/sellers/{seller['seller_id']}")).json()["counts"]["chat"]

    assert len(events) == summary["events"] > 30
    stamps = [e["addTimestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    assert len({e["eventID"] for e in events}) == len(events)
    signs = {c["chatID"]: c["replySign"] for c in chats}
    for event in events:
        assert EVENT_KEYS <= set(event) <= EVENT_KEYS | {"replySign"}
        assert UTC_TIME.fullmatch(event["addTime"])
        assert event["sender"] in ("client", "seller")
        assert ("replySign" in event) == event["isNewChat"]
        if event["isNewChat"]:
            assert event["replySign"] == signs[event["chatID"]]
            assert event["message"]["attachments"]["goodCard"]["nmID"] > 0
    assert sum(e["isNewChat"] for e in events) == 30
    assert {e["sender"] for e in events} == {"client", "seller"}
    last = {e["chatID"]: e for e in events}
    for chat in chats:
        assert chat["lastMessage"]["addTimestamp"] == last[chat["chatID"]]["addTimestamp"]


async def test_an_empty_page_keeps_the_cursor(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(chats=3, limits=False)
    events = await all_events(wb, seller["headers"])
    cursor = events[-1]["addTimestamp"]

    response = await wb.get(
        "/api/v1/seller/events", params={"next": cursor}, headers=seller["headers"]
    )

    assert response.json() == {
        "result": {
            "next": cursor,
            "newestEventTime": None,
            "oldestEventTime": None,
            "totalEvents": 0,
            "events": [],
        },
        "errors": None,
    }


async def test_a_page_reports_its_window() -> None:
    async with client_for(create_sandbox_app(sandbox_config(events_page_size=7))) as client:
        seller = await create_seller(client, chats=5, limits=False)
        first = (await client.get("/api/v1/seller/events", headers=seller["headers"])).json()[
            "result"
        ]
        second = (
            await client.get(
                "/api/v1/seller/events", params={"next": first["next"]}, headers=seller["headers"]
            )
        ).json()["result"]

    assert first["totalEvents"] == len(first["events"]) == 7
    assert first["next"] == first["events"][-1]["addTimestamp"]
    assert first["oldestEventTime"] == first["events"][0]["addTime"]
    assert first["newestEventTime"] == first["events"][-1]["addTime"]
    assert second["events"][0]["addTimestamp"] > first["next"]


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("0", 'Invalid value for "next"'),
        ("-5", 'Invalid value for "next"'),
        ("abc", "Invalid number"),
    ],
)
async def test_bad_cursors_are_400(
    wb: AsyncClient, make_seller: MakeSeller, value: str, detail: str
) -> None:
    seller = await make_seller()

    response = await wb.get(
        "/api/v1/seller/events", params={"next": value}, headers=seller["headers"]
    )

    assert_chat_400(response, detail)


async def test_a_sent_message_joins_the_event_stream(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(chats=4, limits=False)
    headers = seller["headers"]
    chat = (await wb.get("/api/v1/seller/chats", headers=headers)).json()["result"][2]
    cursor = (await all_events(wb, headers))[-1]["addTimestamp"]
    await advance(wb, 60)

    response = await wb.post(
        "/api/v1/seller/message",
        files=form(replySign=chat["replySign"], message="Здравствуйте! Уже разбираемся."),
        headers=headers,
    )

    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == []
    assert set(body["result"]) == {"addTime", "chatID", "sign"}
    assert body["result"]["chatID"] == chat["chatID"]
    new = (await wb.get("/api/v1/seller/events", params={"next": cursor}, headers=headers)).json()
    [event] = new["result"]["events"]
    assert event["chatID"] == chat["chatID"]
    assert (event["sender"], event["source"]) == ("seller", "seller-public-api")
    assert event["message"] == {"text": "Здравствуйте! Уже разбираемся."}
    assert event["isNewChat"] is False
    assert "replySign" not in event
    assert event["addTimestamp"] == body["result"]["addTime"]
    chats = (await wb.get("/api/v1/seller/chats", headers=headers)).json()["result"]
    assert chats[2]["lastMessage"]["text"] == "Здравствуйте! Уже разбираемся."
    deliveries = (await wb.get(f"/_sandbox/sellers/{seller['seller_id']}/deliveries")).json()
    assert deliveries["chat"] == {chat["chatID"]: 1}


async def test_files_are_attached(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(chats=2, limits=False)
    headers = seller["headers"]
    chat = (await wb.get("/api/v1/seller/chats", headers=headers)).json()["result"][0]
    cursor = (await all_events(wb, headers))[-1]["addTimestamp"]

    response = await wb.post(
        "/api/v1/seller/message",
        files=[
            ("replySign", (None, chat["replySign"])),
            ("file", ("чек.pdf", b"%PDF-1.4 test", "application/pdf")),
        ],
        headers=headers,
    )
    events = (
        await wb.get("/api/v1/seller/events", params={"next": cursor}, headers=headers)
    ).json()

    assert response.status_code == 200
    [file] = events["result"]["events"][0]["message"]["attachments"]["files"]
    assert (file["name"], file["contentType"], file["size"]) == ("чек.pdf", "application/pdf", 13)


VALID = "<the chat's replySign>"
PNG_TOO_BIG = ("big.png", b"0" * (5 * 1024 * 1024 + 1), "image/png")


@pytest.mark.parametrize(
    ("fields", "files", "detail"),
    [
        ({"replySign": "forged", "message": "Здравствуйте"}, [], "Invalid signature"),
        ({"message": "Здравствуйте"}, [], 'Invalid value for "replySign"'),
        ({"replySign": VALID, "message": "x" * 1001}, [], 'Invalid value for "message"'),
        ({"replySign": VALID, "message": "  "}, [], 'Invalid value for "message"'),
        (
            {"replySign": VALID},
            [("file", ("a.gif", b"GIF89a", "image/gif"))],
            "a.gif has unsupported mime type",
        ),
        ({"replySign": VALID}, [("file", PNG_TOO_BIG)], "attachment too big. Max size: 5MiB"),
    ],
)
async def test_message_errors(
    wb: AsyncClient,
    make_seller: MakeSeller,
    fields: dict[str, str],
    files: list[Any],
    detail: str,
) -> None:
    seller = await make_seller(chats=2)
    chats = await wb.get("/api/v1/seller/chats", headers=seller["headers"])
    sign = chats.json()["result"][0]["replySign"]
    parts = [(k, (None, sign if v == VALID else v)) for k, v in fields.items()] + files

    response = await wb.post("/api/v1/seller/message", files=parts, headers=seller["headers"])

    assert_chat_400(response, detail)
    deliveries = (await wb.get(f"/_sandbox/sellers/{seller['seller_id']}/deliveries")).json()
    assert deliveries["chat"] == {}


async def test_a_message_must_be_multipart(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(chats=2)
    chats = await wb.get("/api/v1/seller/chats", headers=seller["headers"])
    sign = chats.json()["result"][0]["replySign"]

    response = await wb.post(
        "/api/v1/seller/message",
        data={"replySign": sign, "message": "Привет"},
        headers=seller["headers"],
    )

    assert_chat_400(response, "request Content-Type isn't multipart/form-data")


async def test_a_sign_of_another_seller_is_invalid(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    first = await make_seller(name="first", chats=2)
    second = await make_seller(name="second", chats=2)
    chats = await wb.get("/api/v1/seller/chats", headers=first["headers"])
    sign = chats.json()["result"][0]["replySign"]

    response = await wb.post(
        "/api/v1/seller/message",
        files=form(replySign=sign, message="Привет"),
        headers=second["headers"],
    )

    assert_chat_400(response, "Invalid signature")


async def test_new_chats_and_messages_from_admin(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(chats=3, limits=False)
    headers, items = seller["headers"], f"/_sandbox/sellers/{seller['seller_id']}/items"
    cursor = (await all_events(wb, headers))[-1]["addTimestamp"]

    chats = await wb.post(items, json={"channel": "chat", "count": 2})
    messages = await wb.post(items, json={"channel": "chat", "count": 3, "existing": True})
    new = (await wb.get("/api/v1/seller/events", params={"next": cursor}, headers=headers)).json()

    events = new["result"]["events"]
    opened = [e for e in events if e["isNewChat"]]
    assert {e["chatID"] for e in opened} == set(chats.json()["ids"])
    assert all(e["replySign"] for e in opened)
    assert set(messages.json()["ids"]) <= {e["eventID"] for e in events}
    assert all(e["sender"] == "client" for e in events)
    listed = (await wb.get("/api/v1/seller/chats", headers=headers)).json()["result"]
    assert len(listed) == 5
