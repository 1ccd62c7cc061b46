"""Items as WB serves them: the generated body plus the moving parts (state, answer, wasViewed)."""

from typing import Any

from app.sandbox import generator
from app.sandbox.clock import utc, utc_nanos
from app.sandbox.faults import EVENT_FAULTS, REVIEW_FAULTS, FaultState, malform_event, malform_item
from app.sandbox.seller import Seller
from app.sandbox.store import EDIT_WINDOW, FOLLOWUP, SCRIPTED, SELLER_API, Answer


def _editable(answer: Answer, now: float) -> bool:
    return answer.edits == 0 and answer.visible_at <= now and now - answer.sent_at <= EDIT_WINDOW


def _review_answer(answer: Answer, now: float) -> dict[str, Any]:
    if answer.visible_at > now:
        state = "reviewRequired"
    else:
        state = "rejected" if answer.rejected else "wbRu"
    return {"text": answer.text, "state": state, "editable": _editable(answer, now)}


def review(seller: Seller, index: int, now: float) -> dict[str, Any]:
    feed, catalog = seller.reviews, seller.catalog
    created, product = feed.times[index], feed.products[index]
    item = generator.review(catalog, feed.key, index, feed.external_id(index), created, product)
    answered = bool(feed.answered[index])
    answer = feed.answers.get(index)
    if answer is not None:
        item["answer"] = _review_answer(answer, now)
    elif answered:  # answered in the seeded history: rebuilt here, the hot path of big pages
        rating, name = item["productValuation"], item["userName"]
        brand = catalog.products[product].brand
        text = generator.review_answer(feed.key, index, rating, name, brand)
        sent = seller.seeded_sent_at("review", index)
        item["answer"] = {"text": text, "state": "wbRu", "editable": now - sent <= EDIT_WINDOW}
    else:
        item["answer"] = None
    item["state"] = "wbRu" if answered else "none"
    item["wasViewed"] = answered or created < seller.viewed_before
    return item


def _question_answer(seller: Seller, index: int, now: float) -> tuple[str, dict[str, Any] | None]:
    feed = seller.questions
    answer = feed.answers.get(index)
    if answer is None:
        if not feed.answered[index]:
            return "suppliersPortalSynch", None
        answer = seller.seeded_answer("question", index)
    if answer.hidden:
        return "none", {
            "text": answer.text,
            "editable": False,
            "createDate": utc_nanos(answer.sent_at),
        }
    text = answer.text
    if answer.visible_at > now:
        if answer.previous is None:
            return "suppliersPortalSynch", None  # the first answer is still in moderation
        text = answer.previous
    body = {
        "text": text,
        "editable": _editable(answer, now),
        "createDate": utc_nanos(answer.sent_at),
    }
    return "wbRu", body


def question(seller: Seller, index: int, now: float) -> dict[str, Any]:
    feed, catalog = seller.questions, seller.catalog
    created, product = feed.times[index], feed.products[index]
    item = generator.question(catalog, feed.key, index, feed.external_id(index), created, product)
    item["state"], item["answer"] = _question_answer(seller, index, now)
    viewed = index in feed.viewed or created < seller.viewed_before
    item["wasViewed"] = bool(feed.answered[index]) or viewed
    return item


def feed_page(
    seller: Seller, channel: str, indexes: list[int], now: float, faults: FaultState
) -> list[dict[str, Any]]:
    """A list response's items, some corrupted when malformed items are switched on."""
    build = review if channel == "review" else question
    items = [build(seller, i, now) for i in indexes]
    if faults.malformed_enabled:
        key = seller.feed(channel).key
        for i, item in zip(indexes, items, strict=True):
            kind = faults.malformed_kind(key, i, REVIEW_FAULTS)
            if kind is not None:
                malform_item(item, kind, channel)
    return items


def _good_card(seller: Seller, chat: int) -> dict[str, Any]:
    chats = seller.chats
    script = chats.script(chat)
    return {
        "nmID": seller.catalog.products[chats.products[chat]].nm_id,
        "price": script.price,
        "priceCurrency": "RUB",
        "rid": script.rid,
        "size": script.size,
    }


_DOWNLOADS = "https://buyer-chat-api.wildberries.ru/api/v1/seller/download"


def _message(seller: Seller, index: int, add_time: str) -> tuple[str, str, str, dict[str, Any]]:
    """(text, sender, source, attachments) of an event, by how the event came to be."""
    chats = seller.chats
    chat, kind = chats.ev_chat[index], chats.ev_kind[index]
    script = chats.script(chat)
    if kind == FOLLOWUP:
        text = generator.chat_followup(chats.key, index)
        return text, "client", script.messages[0].source, {}
    if kind == SELLER_API:
        sent = chats.sent[index]
        files = [
            {
                "contentType": f.content_type,
                "date": add_time,
                "downloadID": f.download_id,
                "name": f.name,
                "url": f"{_DOWNLOADS}/{f.download_id}",
                "size": f.size,
            }
            for f in sent.files
        ]
        return sent.text, "seller", "seller-public-api", {"files": files} if files else {}
    seq = chats.ev_seq[index]
    message = script.messages[seq]
    attachments: dict[str, Any] = {"goodCard": _good_card(seller, chat)} if seq == 0 else {}
    if message.images:
        photo = chats.event_id(index)
        attachments["images"] = [
            {"date": add_time, "downloadID": f"{photo}-{n}", "url": f"{_DOWNLOADS}/{photo}-{n}"}
            for n in range(message.images)
        ]
    return message.text, message.sender, message.source, attachments


def event(seller: Seller, index: int) -> dict[str, Any]:
    chats = seller.chats
    chat, ms = chats.ev_chat[index], chats.ev_ms[index]
    add_time = utc(ms / 1000)
    text, sender, source, attachments = _message(seller, index, add_time)
    new_chat = chats.ev_kind[index] == SCRIPTED and chats.ev_seq[index] == 0
    body: dict[str, Any] = {
        "chatID": chats.chat_id(chat),
        "eventID": chats.event_id(index),
        "eventType": "message",
        "isNewChat": new_chat,
        "message": {"text": text, "attachments": attachments} if attachments else {"text": text},
        "source": source,
        "addTimestamp": ms,
        "addTime": add_time,
        "sender": sender,
        "clientName": chats.script(chat).client_name,
    }
    if new_chat:  # WB sends the replySign only on the first event of a chat
        body["replySign"] = chats.reply_sign(chat)
    return body


def event_page(seller: Seller, indexes: range, faults: FaultState) -> list[dict[str, Any]]:
    events = [event(seller, i) for i in indexes]
    if faults.malformed_enabled:
        key = seller.chats.key
        for i, item in zip(indexes, events, strict=True):
            kind = faults.malformed_kind(key, i, EVENT_FAULTS)
            if kind is not None:
                malform_event(item, kind)
    return events


def chat(seller: Seller, index: int) -> dict[str, Any]:
    chats = seller.chats
    last = chats.last_event[index]
    last_message = None
    if last >= 0:
        last_message = {
            "text": event(seller, last)["message"]["text"],
            "addTimestamp": chats.ev_ms[last],
        }
    return {
        "chatID": chats.chat_id(index),
        "replySign": chats.reply_sign(index),
        "clientName": chats.script(index).client_name,
        "goodCard": _good_card(seller, index),
        "lastMessage": last_message,
    }
