from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from app.connectors.base import Channel
from app.core.schemas import Id, Input, Schema
from app.interactions.classify import Intent
from app.interactions.models import PriorityLevel, Status

Source = Literal["wb_api", "ozon_api", "demo", "fallback"]
SlaState = Literal["overdue", "due_soon", "on_track", "none"]
Sort = Literal["priority", "newest", "oldest", "relevance"]


class InteractionFilters(Input):
    """The inbox filters of product.md §3; every one optional, lists mean "any of"."""

    channel: list[Channel] | None = None
    status: list[Status] | None = None
    priority: list[PriorityLevel] | None = None
    source: list[Source] | None = None
    intent: list[Intent] | None = None
    rating: list[int] | None = Field(default=None, max_length=5)
    needs_response: bool | None = None
    nm_id: Id | None = None
    sla: SlaState | None = None
    assignee: str | None = Field(
        default=None, pattern=r"^(me|none|\d{1,18})$", description="me, none or a user id"
    )
    q: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _ratings_in_range(self) -> "InteractionFilters":
        if self.rating and any(not 1 <= r <= 5 for r in self.rating):
            raise ValueError("rating must be between 1 and 5")
        return self


class InteractionListQuery(InteractionFilters):
    """The inbox list's query string: the filters, the order and the page."""

    sort: Sort | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None


class InteractionSummary(Schema):
    """An inbox row: everything but the raw marketplace fields (`extra`, on the card)."""

    id: int
    marketplace: str
    channel: str
    external_id: str
    thread_key: str | None
    customer_id: str | None
    customer_name: str | None
    order_id: str | None
    nm_id: int | None
    product_article: str | None
    product_name: str | None
    text: str | None
    pros: str | None
    cons: str | None
    rating: int | None
    photos_count: int
    status: str
    priority: str
    priority_reason: str | None
    intent: str | None
    needs_response: bool
    is_read: bool
    assignee_id: int | None
    sla_due_at: datetime | None
    sla_state: SlaState = "none"
    occurred_at: datetime
    first_response_at: datetime | None
    source: str


class InteractionRead(InteractionSummary):
    extra: dict[str, Any]


class InteractionPage(BaseModel):
    items: list[InteractionSummary]
    next_cursor: str | None = None


class Counts(BaseModel):
    total: int
    by_channel: dict[str, int]
    by_status: dict[str, int]


class ChatMessageRead(Schema):
    id: int
    direction: str
    sender_name: str | None
    text: str | None
    attachments: Any
    sent_at: datetime


class InteractionUpdate(Input):
    """Triage; only the fields sent are changed."""

    status: Status | None = None
    priority: PriorityLevel | None = None
    priority_reason: str | None = Field(default=None, min_length=3, max_length=200)
    assignee_id: Id | None = None
    is_read: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> "InteractionUpdate":
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        if self.priority is not None and not self.priority_reason:
            raise ValueError("a priority override needs a priority_reason")
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status cannot be null")
        if "is_read" in self.model_fields_set and self.is_read is None:
            raise ValueError("is_read cannot be null")
        return self


MAX_BULK_IDS = 500  # more in one request: 413 payload_too_large


class BulkUpdate(Input):
    ids: list[Id] = Field(min_length=1, max_length=MAX_BULK_IDS)
    changes: InteractionUpdate


class BulkResult(BaseModel):
    updated: list[int]
    not_found: list[int]
