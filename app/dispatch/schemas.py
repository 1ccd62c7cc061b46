from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.core.errors import ErrorBody
from app.core.schemas import Id, Input, Schema
from app.dispatch.models import Action

ReplyText = Field(min_length=1, max_length=5000)
# Visible ASCII, as an HTTP header carries it.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]+$"
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=IDEMPOTENCY_KEY_PATTERN)
]


class ReplyCreate(Input):
    """`answer` answers a review or question, or sends a chat message; `edit` changes the answer
    a review or question already has (WB allows one edit)."""

    text: str = ReplyText
    action: Action = "answer"


class ReplyRead(Schema):
    id: int
    interaction_id: int
    channel: str
    action: str
    text: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    sent_at: datetime | None
    confirmed_by: str | None
    quality: str | None
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime


class BulkReplyItem(ReplyCreate):
    interaction_id: Id
    idempotency_key: IdempotencyKey | None = None


MAX_BULK_REPLIES = 100  # more in one request: 413 payload_too_large


class BulkReplyRequest(Input):
    items: list[BulkReplyItem] = Field(min_length=1, max_length=MAX_BULK_REPLIES)


class BulkReplyResult(BaseModel):
    interaction_id: int
    reply: ReplyRead | None = None
    error: ErrorBody | None = None


class BulkReplyResponse(BaseModel):
    items: list[BulkReplyResult]
