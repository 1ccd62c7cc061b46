"""Wildberries items → marketplace-neutral interaction items (and chat messages).

Each `*_item` function validates one raw item and raises pydantic.ValidationError (or ValueError)
when it is malformed; the batch functions collect those as `Invalid` for the sync to record. No
classification here: the buyer's words go out as `texts` and the sync derives intent, priority
and SLA from them (`app.sync.normalize`).
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from app.connectors.base import (
    ChatBatch,
    ChatDirectory,
    ChatThread,
    InteractionItem,
    Invalid,
    ItemBatch,
    ListChannel,
)
from app.connectors.wildberries.schemas import Chat, ChatEvent, Feedback, Question

MARKETPLACE = "wildberries"
SOURCE = "wb_api"
_MALFORMED = (ValidationError, ValueError, TypeError)


def _base(seller_id: int, channel: str, external_id: str) -> dict[str, Any]:
    return {
        "seller_id": seller_id,
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


def item_ids(raws: Sequence[Any]) -> list[str]:
    """The external ids of raw reviews or questions, before validation (a malformed item's id
    may be missing: it is not stored anyway)."""
    return [raw["id"] for raw in raws if isinstance(raw, dict) and isinstance(raw.get("id"), str)]


def raw_id(raw: Any) -> str | None:
    """The id a malformed raw item shows, if any (for the sync error that records it)."""
    if not isinstance(raw, dict):
        return None
    value = raw.get("id") or raw.get("eventID") or raw.get("chatID")
    return str(value)[:128] if isinstance(value, str | int) else None


def list_items(channel: ListChannel, raws: Sequence[Any], seller_id: int) -> ItemBatch:
    to_item = feedback_item if channel == "review" else question_item
    batch = ItemBatch()
    for raw in raws:
        try:
            batch.items.append(to_item(raw, seller_id))
        except _MALFORMED as exc:
            batch.invalid.append(Invalid(raw, exc, raw_id(raw)))
    return batch


def feedback_item(raw: Any, seller_id: int) -> InteractionItem:
    item = Feedback.model_validate(raw)
    answer = item.answer
    if answer is None or answer.state == "rejected":
        status = "open"
    elif answer.state == "reviewRequired":
        status = "pending_reply"
    else:
        status = "responded"
    has_content = bool(item.text or item.pros or item.cons or item.photoLinks)
    product = item.productDetails
    occurred = _utc(item.createdDate)
    row = _base(seller_id, "review", item.id) | {
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
    return InteractionItem(row, (item.text, item.cons, item.pros), occurred)


def question_item(raw: Any, seller_id: int) -> InteractionItem:
    item = Question.model_validate(raw)
    answered = item.answer is not None and bool(item.answer.text)
    # State "none": rejected by the seller, hidden from buyers, nothing left to answer.
    status = "closed" if item.state == "none" else "responded" if answered else "open"
    product = item.productDetails
    occurred = _utc(item.createdDate)
    answered_at = item.answer.createDate if item.answer else None
    row = _base(seller_id, "question", item.id) | {
        "customer_name": None,
        "nm_id": product.nmId,
        "product_article": product.supplierArticle,
        "product_name": product.productName,
        "text": item.text,
        "status": status,
        "needs_response": status == "open",
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
    return InteractionItem(row, (item.text,), occurred)


def chat_event(raw: Any) -> ChatEvent:
    return ChatEvent.model_validate(raw)


def parse_chat(raw: Any) -> Chat:
    return Chat.model_validate(raw)


def chat_directory(raws: Sequence[Any]) -> ChatDirectory:
    directory = ChatDirectory()
    for raw in raws:
        try:
            chat = parse_chat(raw)
        except ValidationError as exc:
            directory.invalid.append(Invalid(raw, exc, raw_id(raw)))
            continue
        directory.chats[chat.chatID] = chat
    return directory


def chat_threads(raws: Sequence[Any], directory: ChatDirectory, seller_id: int) -> ChatBatch:
    """A page of raw events as threads: by chat in order of first appearance (in time order),
    each chat's events oldest first."""
    batch = ChatBatch()
    events: list[ChatEvent] = []
    for raw in raws:
        try:
            events.append(chat_event(raw))
        except ValidationError as exc:
            batch.invalid.append(Invalid(raw, exc, raw_id(raw)))
    events.sort(key=lambda e: e.addTimestamp)
    by_chat: defaultdict[str, list[ChatEvent]] = defaultdict(list)
    for event in events:
        by_chat[event.chatID].append(event)
    batch.threads = [
        ChatThread(
            chat_id,
            chat_item(chat_id, chat_events, directory.chats.get(chat_id), seller_id),
            [message_row(e, seller_id) for e in chat_events],
        )
        for chat_id, chat_events in by_chat.items()
    ]
    return batch


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


def chat_item(
    chat_id: str, events: list[ChatEvent], meta: Chat | None, seller_id: int
) -> InteractionItem:
    """The chat's interaction as these (time-ordered) new events leave it."""
    last = events[-1]
    client_texts = [e.message.text for e in events if e.sender == "client" and e.message]
    # The SLA clock runs from the first buyer message after our last reply in this batch.
    waiting = [e for e in events if e.sender == "client"]
    last_out = max((e.addTimestamp for e in events if e.sender != "client"), default=None)
    if last_out is not None:
        waiting = [e for e in waiting if e.addTimestamp > last_out]
    text = client_texts[-1] if client_texts else (last.message.text if last.message else "")
    card = (meta.goodCard if meta else None) or _event_card(events)
    reply_sign = (meta.replySign if meta else None) or next(
        (e.replySign for e in events if e.replySign), None
    )
    open_ = last.sender == "client"
    due_from = ms_to_datetime(waiting[0].addTimestamp) if waiting else None
    row = _base(seller_id, "chat", chat_id) | {
        "thread_key": chat_id,
        "order_id": card.rid if card else None,
        "customer_name": (meta.clientName if meta else None) or last.clientName,
        "nm_id": card.nmID if card else None,
        "product_article": None,
        "product_name": None,
        "text": text,
        "status": "open" if open_ else "responded",
        "needs_response": open_,
        "occurred_at": ms_to_datetime(events[0].addTimestamp),
        "extra": {
            "reply_sign": reply_sign,
            "last_message_at": ms_to_datetime(last.addTimestamp).isoformat(),
            "last_sender": last.sender,
            "price": card.price if card else None,
            "size": card.size if card else None,
        },
    }
    return InteractionItem(row, tuple(client_texts), due_from)


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
