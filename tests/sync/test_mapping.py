from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from app.connectors.wildberries import mapping
from app.connectors.wildberries.schemas import MAX_TEXT_CHARS
from tests.sync import payloads

CTX = mapping.SellerContext(seller_id=7, sla_targets={})


def test_review_maps_to_a_canonical_row() -> None:
    row = mapping.feedback_row(payloads.feedback(1), CTX)

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
    assert mapping.feedback_row(payloads.feedback(1, answer=answer), CTX)["status"] == status


def test_answered_and_rejected_questions() -> None:
    answered = payloads.question(
        1,
        state="wbRu",
        answer={"text": "Да", "editable": True, "createDate": "2026-03-03T10:00:00Z"},
    )
    rejected = payloads.question(2, state="none")

    row = mapping.question_row(answered, CTX)
    assert row["status"] == "responded"
    assert row["first_response_at"] == datetime(2026, 3, 3, 10, tzinfo=UTC)
    assert mapping.question_row(rejected, CTX)["status"] == "closed"


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
        mapping.feedback_row(payloads.feedback(1, **broken), CTX)


def test_emoji_text_is_fine() -> None:
    row = mapping.feedback_row(payloads.feedback(1, text="Супер 👍🔥😍" * 50), CTX)

    assert row["text"].startswith("Супер 👍")


def test_chat_row_opens_on_a_buyer_message_and_closes_on_our_reply() -> None:
    events = [
        mapping.chat_event(payloads.event("1:a", 0, 1_700_000_000_000)),
        mapping.chat_event(payloads.event("1:a", 1, 1_700_000_060_000, "seller", "Уже едет")),
        mapping.chat_event(payloads.event("1:a", 2, 1_700_000_120_000, text="Верните деньги")),
    ]

    row = mapping.chat_row("1:a", events, None, CTX)
    replied = mapping.chat_row("1:a", events[:2], None, CTX)

    assert row["status"] == "open"
    assert row["needs_response"] is True
    assert row["intent"] == "return_refund"
    assert row["priority"] == "urgent"
    assert row["sla_due_at"] == mapping.ms_to_datetime(1_700_000_120_000 + 60 * 60 * 1000)
    assert row["order_id"] == "srid-1"
    assert row["extra"]["reply_sign"] == "sign-1:a"
    assert replied["status"] == "responded"
    assert replied["sla_due_at"] is None
