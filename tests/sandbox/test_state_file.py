"""The state file: a sandbox started again on it answers as the first one did."""

import json
import os
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from app.sandbox.app import create_sandbox_app
from app.sandbox.persist import StateFileError
from tests.sandbox.conftest import (
    advance,
    all_events,
    all_items,
    client_for,
    create_seller,
    sandbox_config,
)
from tests.sandbox.test_chat import form


async def _marketplace_view(wb: AsyncClient, seller: dict[str, Any]) -> dict[str, Any]:
    """Everything a connector can read about the seller, plus the admin counters."""
    headers, url = seller["headers"], f"/_sandbox/sellers/{seller['seller_id']}"
    view: dict[str, Any] = {
        f"{channel}:{answered}": await all_items(wb, headers, channel, answered)
        for channel in ("review", "question")
        for answered in (True, False)
    }
    view["events"] = await all_events(wb, headers)
    view["chats"] = (await wb.get("/api/v1/seller/chats", headers=headers)).json()
    view["deliveries"] = (await wb.get(f"{url}/deliveries")).json()
    summary = (await wb.get(url)).json()
    view["summary"] = summary
    return view


async def _change_everything(wb: AsyncClient, seller: dict[str, Any]) -> None:
    headers, url = seller["headers"], f"/_sandbox/sellers/{seller['seller_id']}"
    for body in (
        {"channel": "review", "count": 5},
        {"channel": "question", "count": 4},
        {"channel": "chat", "count": 2},
        {"channel": "chat", "count": 3, "existing": True},
    ):
        assert (await wb.post(f"{url}/items", json=body)).status_code == 200
    await advance(wb, 30)
    [review] = (await all_items(wb, headers, "review", False))[:1]
    [question, rejected] = (await all_items(wb, headers, "question", False))[:2]
    answered = await wb.post(
        "/api/v1/feedbacks/answer", json={"id": review["id"], "text": "Спасибо!"}, headers=headers
    )
    assert answered.status_code == 204
    for item, state in ((question, "wbRu"), (rejected, "none")):
        body = {"id": item["id"], "answer": {"text": "Да."}, "state": state}
        assert (await wb.patch("/api/v1/questions", json=body, headers=headers)).status_code == 200
    viewed = {"id": question["id"], "wasViewed": True}
    assert (await wb.patch("/api/v1/questions", json=viewed, headers=headers)).status_code == 200
    chat = (await wb.get("/api/v1/seller/chats", headers=headers)).json()["result"][0]
    sent = await wb.post(
        "/api/v1/seller/message",
        files=[
            *form(replySign=chat["replySign"], message="Здравствуйте!").items(),
            ("file", ("чек.pdf", b"%PDF-1.4 test", "application/pdf")),
        ],
        headers=headers,
    )
    assert sent.status_code == 200
    await wb.patch(url, json={"moderation_seconds": 60, "new_items_per_minute": {"review": 2}})
    await wb.put(f"{url}/faults", json={"malformed_rate": 0.1, "seed": 3})
    await wb.put(
        "/_sandbox/rate-limits", json={"enabled": True, "feedbacks": {"rate": 5, "burst": 9}}
    )
    await advance(wb, 60)  # growth adds two reviews during the next read


async def test_a_restarted_sandbox_answers_as_before(tmp_path: Path) -> None:
    state = tmp_path / "state" / "sandbox.json"
    first_app = create_sandbox_app(sandbox_config(state_file=state))
    async with client_for(first_app) as wb:
        seller = await create_seller(wb, name="kept", limits=False)
        gone = await create_seller(wb, name="revoked")
        await wb.post(f"/_sandbox/sellers/{gone['seller_id']}/token/revoke")
        await _change_everything(wb, seller)
        before = await _marketplace_view(wb, seller)
        clock = (await wb.get("/_sandbox/clock")).json()
        limits = (await wb.get("/_sandbox/rate-limits")).json()

    second_app = create_sandbox_app(sandbox_config(state_file=state))
    async with client_for(second_app) as wb:
        after = await _marketplace_view(wb, seller)
        refused = await wb.get("/api/v1/feedbacks/count", headers=gone["headers"])
        listed = (await wb.get("/_sandbox/sellers")).json()["sellers"]

        assert (await wb.get("/_sandbox/clock")).json() == clock
        assert (await wb.get("/_sandbox/rate-limits")).json() == limits

    assert before["summary"]["counts"]["review"]["total"] == 200 + 5 + 2
    assert [sorted(d.values()) for d in before["deliveries"].values()] == [[1], [1, 1], [1]]
    assert after == before
    assert refused.status_code == 401
    assert {s["name"]: (s["token"], s["revoked"]) for s in listed} == {
        "kept": (seller["token"], False),
        "revoked": (gone["token"], True),
    }


async def test_every_change_is_written_at_once_and_whole(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    app = create_sandbox_app(sandbox_config(state_file=state))
    async with client_for(app) as wb:
        await wb.get("/_sandbox/health")
        assert not state.exists()  # reads write nothing
        seller = await create_seller(wb, name="one", reviews=10, questions=0, chats=0)
        assert [s["token"] for s in json.loads(state.read_text())["sellers"]] == [seller["token"]]
        await wb.post(
            f"/_sandbox/sellers/{seller['seller_id']}/items", json={"channel": "review", "count": 3}
        )
        written = json.loads(state.read_text())["sellers"][0]
        await wb.post("/_sandbox/reset")

    assert written["review"]["times"][0] == "d"
    assert json.loads(state.read_text())["sellers"] == []
    assert os.listdir(tmp_path) == ["sandbox.json"]  # no temporary file left


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 99}', b'{"version": 1}'])
def test_an_unreadable_state_file_is_refused(tmp_path: Path, content: bytes) -> None:
    state = tmp_path / "sandbox.json"
    state.write_bytes(content)

    with pytest.raises(StateFileError, match="not a sandbox state file"):
        create_sandbox_app(sandbox_config(state_file=state))
