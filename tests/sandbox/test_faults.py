"""Fault injection: random 5xx, 429 bursts, latency, malformed items (global and per seller)."""

import re
import time
from collections import Counter
from typing import Any

from httpx import AsyncClient

from tests.sandbox.conftest import MakeSeller, all_events, all_items

REVIEW_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+03:00")
QUESTION_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
EMOJI = re.compile("[\U0001f300-\U0001faff]")


def review_flaw(item: dict[str, Any]) -> str | None:
    """What a careful client would reject in a review; None for a clean one."""
    if "id" not in item:
        return "missing_id"
    if "createdDate" not in item:
        return "missing_created_date"
    if not isinstance(item["productValuation"], int):
        return "wrong_type"
    if not REVIEW_DATE.fullmatch(item["createdDate"]):
        return "broken_date"
    if len(item["text"]) > 100_000:
        return "huge_text"
    if len(EMOJI.findall(item["text"])) > 10:
        return "emoji"
    return None


def question_flaw(item: dict[str, Any]) -> str | None:
    if "id" not in item:
        return "missing_id"
    if "createdDate" not in item:
        return "missing_created_date"
    if not isinstance(item["productDetails"]["nmId"], int):
        return "wrong_type"
    if not QUESTION_DATE.fullmatch(item["createdDate"]):
        return "broken_date"
    if len(item["text"]) > 100_000:
        return "huge_text"
    if len(EMOJI.findall(item["text"])) > 10:
        return "emoji"
    return None


def event_flaw(event: dict[str, Any]) -> str | None:
    if "eventID" not in event:
        return "missing_event_id"
    if "addTimestamp" not in event:
        return "missing_add_timestamp"
    if not isinstance(event["addTimestamp"], int):
        return "wrong_type"
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["addTime"]):
        return "broken_date"
    if len(event["message"]["text"]) > 100_000:
        return "huge_text"
    if len(EMOJI.findall(event["message"]["text"])) > 10:
        return "emoji"
    return None


async def test_error_rate_is_roughly_honoured(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(limits=False)
    await wb.put("/_sandbox/faults", json={"error_rate": 0.2, "seed": 5})

    responses = [
        await wb.get("/api/v1/feedbacks/count", headers=seller["headers"]) for _ in range(500)
    ]

    statuses = Counter(r.status_code for r in responses)
    errors = sum(n for status, n in statuses.items() if status >= 500)
    assert 0.15 * 500 <= errors <= 0.25 * 500, statuses
    assert set(statuses) == {200, 500, 502, 503}
    bodies = {r.status_code: r for r in responses if r.status_code >= 500}
    assert bodies[500].json()["error"] is True
    assert "502 Bad Gateway" in bodies[502].text
    assert bodies[503].headers["content-type"] == "application/problem+json"
    log = (await wb.get(f"/_sandbox/sellers/{seller['seller_id']}/requests")).json()
    assert log["by_group"]["feedbacks"]["status_counts"] == {
        str(k): v for k, v in sorted(statuses.items())
    }


async def test_429_bursts_come_every_n_requests(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(limits=False)
    await wb.put(
        f"/_sandbox/sellers/{seller['seller_id']}/faults",
        json={"burst_429": {"every": 4, "length": 2}},
    )

    responses = [await wb.get("/api/v1/seller/chats", headers=seller["headers"]) for _ in range(12)]

    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429, 429] * 2
    limited = responses[4]
    assert limited.headers["X-Ratelimit-Retry"] == "1"
    assert limited.headers["X-Ratelimit-Limit"] == "10"
    assert limited.json()["title"] == "too many requests"


async def test_latency_is_added(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(limits=False)
    await wb.put("/_sandbox/faults", json={"latency_ms": [40, 60]})

    started = time.perf_counter()
    response = await wb.get("/api/v1/feedbacks/count", headers=seller["headers"])

    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.04


async def test_seller_faults_override_the_global_ones(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    calm = await make_seller(name="calm", limits=False)
    flaky = await make_seller(name="flaky", limits=False)
    await wb.put("/_sandbox/faults", json={"error_rate": 1.0})
    await wb.put(f"/_sandbox/sellers/{calm['seller_id']}/faults", json={})

    calm_status = (await wb.get("/api/v1/feedbacks/count", headers=calm["headers"])).status_code
    flaky_status = (await wb.get("/api/v1/feedbacks/count", headers=flaky["headers"])).status_code
    await wb.delete(f"/_sandbox/sellers/{calm['seller_id']}/faults")
    calm_again = (await wb.get("/api/v1/feedbacks/count", headers=calm["headers"])).status_code

    assert calm_status == 200
    assert flaky_status >= 500
    assert calm_again >= 500


async def test_malformed_items_are_listed_and_stable(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(reviews=500, questions=300, chats=20, limits=False)
    headers = seller["headers"]
    await wb.put(
        f"/_sandbox/sellers/{seller['seller_id']}/faults", json={"malformed_rate": 0.1, "seed": 3}
    )

    listed = (await wb.get(f"/_sandbox/sellers/{seller['seller_id']}/malformed")).json()
    reviews = [r for flag in (True, False) for r in await all_items(wb, headers, "review", flag)]
    questions = [
        q for flag in (True, False) for q in await all_items(wb, headers, "question", flag)
    ]
    events = await all_events(wb, headers)

    for items, flaw, channel in (
        (reviews, review_flaw, "review"),
        (questions, question_flaw, "question"),
        (events, event_flaw, "chat"),
    ):
        found = Counter(flaw(item) for item in items)
        expected = Counter(entry["kind"] for entry in listed[channel])
        del found[None]
        assert found == expected, channel
        assert 0.04 * len(items) < sum(expected.values()) < 0.2 * len(items)
    listed_ids = {e["id"] for e in listed["review"] if e["kind"] != "missing_id"}
    served_bad = {r["id"] for r in reviews if "id" in r and review_flaw(r)}
    assert served_bad == listed_ids
    assert {e["event_id"] for e in listed["chat"] if e["kind"] != "missing_event_id"} == {
        e["eventID"] for e in events if "eventID" in e and event_flaw(e)
    }
    again = [r for flag in (True, False) for r in await all_items(wb, headers, "review", flag)]
    assert again == reviews


async def test_get_one_is_never_malformed(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(limits=False)
    await wb.put("/_sandbox/faults", json={"malformed_rate": 1.0})
    listed = (await wb.get(f"/_sandbox/sellers/{seller['seller_id']}/malformed")).json()
    entry = next(e for e in listed["review"] if e["kind"] == "broken_date")

    response = await wb.get(
        "/api/v1/feedback", params={"id": entry["id"]}, headers=seller["headers"]
    )

    assert review_flaw(response.json()["data"]) is None


async def test_fault_settings_are_validated(wb: AsyncClient) -> None:
    assert (await wb.put("/_sandbox/faults", json={"error_rate": 2})).status_code == 422
    assert (await wb.put("/_sandbox/faults", json={"latency_ms": [50, 10]})).status_code == 422
    assert (await wb.put("/_sandbox/faults", json={"surprise": True})).status_code == 422
    assert (await wb.get("/_sandbox/faults")).json()["error_rate"] == 0.0
