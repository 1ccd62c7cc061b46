"""Wildberries payloads through the connector's mapping and the sync's classification: the rows
the sync stores."""

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from app.connectors.base import InteractionItem
from app.connectors.wildberries import CONNECTOR, mapping
from app.connectors.wildberries.schemas import MAX_TEXT_CHARS, ChatEvent
from app.sync import normalize
from app.sync.normalize import SellerContext
from tests.sync import payloads

CTX = SellerContext(seller_id=7, sla_targets={})


def _chat_row(chat_id: str, events: list[ChatEvent]) -> dict[str, Any]:
    return normalize.classified(mapping.chat_item(chat_id, events, None, CTX.seller_id), CTX)


def test_review_maps_to_a_canonical_row() -> None:
    row = payloads.review_row(payloads.feedback(1), CTX)

    assert row["channel"] == "review"
    assert row["external_id"] == "fb000000000000000001"
    assert row["rating"] == 2
    assert row["status"] == "open"
    assert row["needs_response"] is True
    assert row["intent"] == "sizing_fit"
    assert row["priority"] == "high"
    assert row["occurred_at"] == datetime(2026, 3, 2, 7, 20, 48, tzinfo=UTC)
    assert row["sla_due_at"] > row["occurred_at"]
    assert row["nm_id"] == 1001
    assert row["customer_name"] == "Анна"


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"text": "Спасибо", "state": "wbRu", "editable": False}, "responded"),
        ({"text": "Спасибо", "state": "reviewRequired", "editable": False}, "pending_reply"),
        ({"text": "Спасибо", "state": "rejected", "editable": True}, "open"),
    ],
)
def test_review_answer_state_sets_the_status(answer: dict[str, object], status: str) -> None:
    assert payloads.review_row(payloads.feedback(1, answer=answer), CTX)["status"] == status


def test_answered_and_rejected_questions() -> None:
    answered = payloads.question(
        1,
        state="wbRu",
        answer={"text": "Да", "editable": True, "createDate": "2026-03-03T10:00:00Z"},
    )
    rejected = payloads.question(2, state="none")

    row = payloads.question_row(answered, CTX)
    assert row["status"] == "responded"
    assert row["first_response_at"] == datetime(2026, 3, 3, 10, tzinfo=UTC)
    assert payloads.question_row(rejected, CTX)["status"] == "closed"


@pytest.mark.parametrize(
    "broken",
    [
        {"id": None},
        {"createdDate": "2024-13-45T99:00"},
        {"createdDate": "2024-03-01T10:00:00"},  # no zone: ambiguous
        {"productValuation": "five"},
        {"productValuation": 9},
        {"text": "я" * (MAX_TEXT_CHARS + 1)},
    ],
)
def test_malformed_reviews_are_rejected(broken: dict[str, object]) -> None:
    with pytest.raises((ValidationError, ValueError)):
        payloads.review_row(payloads.feedback(1, **broken), CTX)


def test_emoji_text_is_fine() -> None:
    row = payloads.review_row(payloads.feedback(1, text="Супер 👍🔥😍" * 50), CTX)

    assert row["text"].startswith("Супер 👍")


def test_chat_row_opens_on_a_buyer_message_and_closes_on_our_reply() -> None:
    events = [
        mapping.chat_event(payloads.event("1:a", 0, 1_700_000_000_000)),
        mapping.chat_event(payloads.event("1:a", 1, 1_700_000_060_000, "seller", "Уже едет")),
        mapping.chat_event(payloads.event("1:a", 2, 1_700_000_120_000, text="Верните деньги")),
    ]

    row = _chat_row("1:a", events)
    replied = _chat_row("1:a", events[:2])

    assert row["status"] == "open"
    assert row["needs_response"] is True
    assert row["intent"] == "return_refund"
    assert row["priority"] == "urgent"
    assert row["sla_due_at"] == mapping.ms_to_datetime(1_700_000_120_000 + 60 * 60 * 1000)
    assert row["order_id"] == "srid-1"
    assert row["extra"]["reply_sign"] == "sign-1:a"
    assert replied["status"] == "responded"
    assert replied["sla_due_at"] is None


def test_the_mapping_does_not_classify() -> None:
    """Intent, priority and SLA are the sync's: the connector hands over the buyer's words."""
    item = mapping.feedback_item(payloads.feedback(1, cons="Брак"), CTX.seller_id)

    assert isinstance(item, InteractionItem)
    assert not {"intent", "priority", "priority_reason", "sla_due_at"} & set(item.row)
    assert item.texts == ("Размер маломерит", "Брак", "Цвет")
    assert item.clock_from == item.row["occurred_at"]


def test_a_list_page_keeps_the_readable_items_and_reports_the_rest() -> None:
    raws = [payloads.feedback(1), payloads.feedback(2, productValuation=9), "junk"]

    batch = CONNECTOR.list_items("review", raws, CTX.seller_id)
    rows = normalize.list_rows(CONNECTOR, "review", raws, CTX)

    assert [item.row["external_id"] for item in batch.items] == ["fb000000000000000001"]
    assert [bad.external_id for bad in batch.invalid] == ["fb000000000000000002", None]
    assert [row["intent"] for row in rows.rows] == ["sizing_fit"]
    assert rows.newest == int(batch.items[0].row["occurred_at"].timestamp())


def test_chat_threads_group_a_page_by_chat_in_time_order() -> None:
    raws = [
        payloads.event("1:b", 0, 1_700_000_050_000),
        payloads.event("1:a", 1, 1_700_000_060_000, "seller", "Уже едет"),
        payloads.event("1:a", 0, 1_700_000_000_000),
        {"chatID": "1:c", "eventID": "broken", "addTimestamp": "soon"},
    ]

    batch = CONNECTOR.chat_threads(raws, CONNECTOR.chat_directory([]), CTX.seller_id)

    assert [thread.chat_id for thread in batch.threads] == ["1:a", "1:b"]
    assert [m["external_id"] for m in batch.threads[0].messages] == ["1:a-e0", "1:a-e1"]
    assert batch.threads[0].item.row["status"] == "responded"
    assert [bad.external_id for bad in batch.invalid] == ["broken"]
