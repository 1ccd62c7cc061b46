"""Wildberries items → canonical interaction rows (and chat messages).

Each function validates one raw item and raises pydantic.ValidationError (or ValueError) when it is
malformed; the sync records those and moves on. Heavy fields (intent, priority, SLA) are computed
here for every item but only written when the row is new (see sync.repository.upsert_interactions).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.connectors.wildberries.schemas import Chat, ChatEvent, Feedback, Question
from app.interactions import classify

MARKETPLACE = "wildberries"
SOURCE = "wb_api"


@dataclass(frozen=True)
class SellerContext:
    seller_id: int
    sla_targets: dict[str, Any]


def _base(ctx: SellerContext, channel: str, external_id: str) -> dict[str, Any]:
    return {
        "seller_id": ctx.seller_id,
        "marketplace": MARKETPLACE,
        "channel": channel,
        "external_id": external_id,
        "source": SOURCE,
        "thread_key": None,
        "customer_id": None,
        "order_id": None,
        "pros": None,
        "cons": None,
        "rating": None,
        "photos_count": 0,
        "first_response_at": None,
    }


def item_ids(raws: list[Any]) -> list[str]:
    """The external ids of raw reviews or questions, before validation (a malformed item's id
    may be missing: it is not stored anyway)."""
    return [raw["id"] for raw in raws if isinstance(raw, dict) and isinstance(raw.get("id"), str)]


def feedback_row(raw: Any, ctx: SellerContext) -> dict[str, Any]:
    item = Feedback.model_validate(raw)
    answer = item.answer
    if answer is None or answer.state == "rejected":
        status = "open"
    elif answer.state == "reviewRequired":
        status = "pending_reply"
    else:
        status = "responded"
    intent = classify.classify_intent(item.text, item.cons, item.pros)
    priority = classify.review_priority(item.productValuation, intent, item.text, item.cons)
    has_content = bool(item.text or item.pros or item.cons or item.photoLinks)
    product = item.productDetails
    occurred = _utc(item.createdDate)
    return _base(ctx, "review", item.id) | {
        "customer_name": item.userName or None,
        "nm_id": product.nmId,
        "product_article": product.supplierArticle,
        "product_name": product.productName,
        "text": item.text,
        "pros": item.pros,
        "cons": item.cons,
        "rating": item.productValuation,
        "photos_count": len(item.photoLinks or []),
        "status": status,
        "needs_response": status == "open" and (has_content or item.productValuation <= 3),
        "intent": intent,
        "priority": priority.level,
        "priority_reason": priority.reason,
        "sla_due_at": classify.sla_due(ctx.sla_targets, "review", intent, occurred),
        "occurred_at": occurred,
        "extra": {
            "answer": answer.model_dump() if answer else None,
            "state": item.state,
            "brand": product.brandName,
            "size": product.size,
            "order_status": item.orderStatus,
            "matching_size": item.matchingSize,
            "bables": item.bables,
            "has_video": item.video is not None,
            "was_viewed": item.wasViewed,
            "parent_feedback_id": item.parentFeedbackId,
        },
    }


def question_row(raw: Any, ctx: SellerContext) -> dict[str, Any]:
    item = Question.model_validate(raw)
    answered = item.answer is not None and bool(item.answer.text)
    # State "none": rejected by the seller, hidden from buyers, nothing left to answer.
    status = "closed" if item.state == "none" else "responded" if answered else "open"
    intent = classify.classify_intent(item.text)
    priority = classify.question_priority(intent, item.text)
    product = item.productDetails
    occurred = _utc(item.createdDate)
    answered_at = item.answer.createDate if item.answer else None
    return _base(ctx, "question", item.id) | {
        "customer_name": None,
        "nm_id": product.nmId,
        "product_article": product.supplierArticle,
        "product_name": product.productName,
        "text": item.text,
        "status": status,
        "needs_response": status == "open",
        "intent": intent,
        "priority": priority.level,
        "priority_reason": priority.reason,
        "sla_due_at": classify.sla_due(ctx.sla_targets, "question", intent, occurred),
        "occurred_at": occurred,
        "first_response_at": _utc(answered_at) if answered_at else None,
        "extra": {
            "answer": item.answer.model_dump(mode="json") if item.answer else None,
            "state": item.state,
            "brand": product.brandName,
            "was_viewed": item.wasViewed,
            "is_warned": item.isWarned,
        },
    }


def chat_event(raw: Any) -> ChatEvent:
    return ChatEvent.model_validate(raw)


def parse_chat(raw: Any) -> Chat:
    return Chat.model_validate(raw)


def message_row(event: ChatEvent, seller_id: int) -> dict[str, Any]:
    message = event.message
    attachments = message.attachments if message else None
    return {
        "seller_id": seller_id,
        "external_id": event.eventID,
        "direction": "in" if event.sender == "client" else "out",
        "sender_name": event.clientName if event.sender == "client" else event.sender,
        "text": message.text if message else None,
        "attachments": attachments.model_dump(exclude_none=True) if attachments else [],
        "sent_at": ms_to_datetime(event.addTimestamp),
    }


def chat_row(
    chat_id: str, events: list[ChatEvent], meta: Chat | None, ctx: SellerContext
) -> dict[str, Any]:
    """The chat's interaction as these (time-ordered) new events leave it."""
    last = events[-1]
    client_texts = [e.message.text for e in events if e.sender == "client" and e.message]
    # The SLA clock runs from the first buyer message after our last reply in this batch.
    waiting = [e for e in events if e.sender == "client"]
    last_out = max((e.addTimestamp for e in events if e.sender != "client"), default=None)
    if last_out is not None:
        waiting = [e for e in waiting if e.addTimestamp > last_out]
    text = client_texts[-1] if client_texts else (last.message.text if last.message else "")
    intent = classify.classify_intent(*client_texts)
    priority = classify.chat_priority(intent, " ".join(client_texts))
    card = (meta.goodCard if meta else None) or _event_card(events)
    reply_sign = (meta.replySign if meta else None) or next(
        (e.replySign for e in events if e.replySign), None
    )
    open_ = last.sender == "client"
    due_from = ms_to_datetime(waiting[0].addTimestamp) if waiting else None
    return _base(ctx, "chat", chat_id) | {
        "thread_key": chat_id,
        "order_id": card.rid if card else None,
        "customer_name": (meta.clientName if meta else None) or last.clientName,
        "nm_id": card.nmID if card else None,
        "product_article": None,
        "product_name": None,
        "text": text,
        "status": "open" if open_ else "responded",
        "needs_response": open_,
        "intent": intent,
        "priority": priority.level,
        "priority_reason": priority.reason,
        "sla_due_at": classify.sla_due(ctx.sla_targets, "chat", intent, due_from)
        if due_from
        else None,
        "occurred_at": ms_to_datetime(events[0].addTimestamp),
        "extra": {
            "reply_sign": reply_sign,
            "last_message_at": ms_to_datetime(last.addTimestamp).isoformat(),
            "last_sender": last.sender,
            "price": card.price if card else None,
            "size": card.size if card else None,
        },
    }


def _event_card(events: list[ChatEvent]) -> Any:
    for event in events:
        if event.message and event.message.attachments and event.message.attachments.goodCard:
            return event.message.attachments.goodCard
    return None


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("date without a time zone")
    return value.astimezone(UTC)
