"""buyer-chat-api: chats, the event stream and sending messages (wb-api.md §2)."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.sandbox import multipart, render
from app.sandbox.clock import utc
from app.sandbox.errors import ChatError, chat_ok
from app.sandbox.gate import FAULTS, NOW, SELLER
from app.sandbox.ids import make_uuid
from app.sandbox.seller import Seller
from app.sandbox.store import SELLER_API, SentFile, SentMessage

router = APIRouter(tags=["buyer-chat-api"])

MESSAGE_MAX = 1000
SIGN_MAX = 255
FILE_MAX = 5 * 1024 * 1024
FILES_TOTAL_MAX = 30 * 1024 * 1024
FILE_TYPES = frozenset({"image/jpeg", "image/png", "application/pdf"})


@router.get("/api/v1/seller/chats")
async def chats(request: Request) -> Response:
    seller: Seller = request.scope[SELLER]
    return chat_ok([render.chat(seller, c) for c in range(len(seller.chats))])


def _cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ChatError("Invalid number") from None
    if value <= 0:
        raise ChatError('Invalid value for "next"')
    return value


@router.get("/api/v1/seller/events")
async def events(request: Request) -> Response:
    """Events strictly after `next` (ms); the first call sends no `next`."""
    seller: Seller = request.scope[SELLER]
    cursor = _cursor(request.query_params.get("next"))
    page = seller.chats.events_after(cursor, request.app.state.sandbox.config.events_page_size)
    items = render.event_page(seller, page, request.scope[FAULTS])
    if not page:
        # Nothing newer: the cursor stays. Before any event it is the start of the history.
        empty_next = cursor if cursor is not None else int(seller.history_start * 1000)
        result = {"next": empty_next, "newestEventTime": None, "oldestEventTime": None}
        return chat_ok(result | {"totalEvents": 0, "events": []})
    ms = seller.chats.ev_ms
    first, last = ms[page.start], ms[page.stop - 1]
    return chat_ok(
        {
            "next": last,
            "newestEventTime": utc(last / 1000),
            "oldestEventTime": utc(first / 1000),
            "totalEvents": len(items),
            "events": items,
        }
    )


def _files(parts: list[multipart.Part], seller: Seller) -> tuple[SentFile, ...]:
    files: list[SentFile] = []
    total = 0
    for part in parts:
        if part.name != "file" or part.filename is None:
            continue
        if len(part.data) > FILE_MAX:
            raise ChatError("attachment too big. Max size: 5MiB")
        if part.content_type not in FILE_TYPES:
            raise ChatError(f"{part.filename} has unsupported mime type")
        total += len(part.data)
        download_id = make_uuid(seller.chats.key ^ 0xF11E, seller.chats.event_count, len(files))
        files.append(SentFile(part.filename, part.content_type, len(part.data), download_id))
    if total > FILES_TOTAL_MAX:
        raise ChatError("attachments too big. Max total size: 30MiB")
    return tuple(files)


def _field(parts: list[multipart.Part], name: str) -> str | None:
    for part in parts:
        if part.name == name and part.filename is None:
            return part.data.decode("utf-8", "replace")
    return None


@router.post("/api/v1/seller/message")
async def send_message(request: Request) -> Response:
    seller: Seller = request.scope[SELLER]
    try:
        parts = multipart.parse(await request.body(), request.headers.get("content-type", ""))
    except multipart.MultipartError:
        raise ChatError("request Content-Type isn't multipart/form-data") from None
    sign = _field(parts, "replySign")
    if not sign or len(sign) > SIGN_MAX:
        raise ChatError('Invalid value for "replySign"')
    chat = seller.chats.chat_of_sign(sign)
    if chat is None:
        raise ChatError("Invalid signature")
    text = _field(parts, "message") or ""
    files = _files(parts, seller)
    if len(text) > MESSAGE_MAX or (not text.strip() and not files):
        raise ChatError('Invalid value for "message"')
    chats = seller.chats
    chat_id = chats.chat_id(chat)
    seller.deliveries["chat"][chat_id] += 1
    message_sign = make_uuid(chats.key ^ 0x5167, chats.event_count).replace("-", "")
    event = chats.add_event(int(request.scope[NOW] * 1000), chat, SELLER_API)
    chats.sent[event] = SentMessage(text, files, message_sign)
    return chat_ok({"addTime": chats.ev_ms[event], "chatID": chat_id, "sign": message_sign}, [])
