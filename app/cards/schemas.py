"""What the operator's card and the cross-channel timeline show."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.core.schemas import Schema
from app.dispatch.schemas import ReplyRead
from app.drafts.schemas import DraftRead
from app.interactions.schemas import ChatMessageRead, InteractionRead, SlaState
from app.links.models import Level
from app.links.schemas import ActionMode, LinkRead

# --- the card ------------------------------------------------------------------------------


class ContextItem(Schema):
    id: int
    channel: str
    occurred_at: datetime
    status: str
    rating: int | None
    intent: str | None
    text_preview: str


class IntentCount(BaseModel):
    intent: str
    count: int


class SellerReply(BaseModel):
    interaction_id: int
    channel: str
    occurred_at: datetime
    text: str


class ProductContext(BaseModel):
    nm_id: int | None
    product_name: str | None
    recent: dict[str, list[ContextItem]]
    top_intents: list[IntentCount]
    last_replies: list[SellerReply]


class SlaInfo(BaseModel):
    state: SlaState
    due_at: datetime | None
    minutes_left: int | None


class InteractionCard(BaseModel):
    interaction: InteractionRead
    messages: list[ChatMessageRead]
    context: ProductContext
    links: list[LinkRead]
    sla: SlaInfo
    last_draft: DraftRead | None
    outbox: ReplyRead | None


# --- the timeline --------------------------------------------------------------------------

Scope = Literal["customer_order", "customer", "product", "single"]


class TimelineInteraction(Schema):
    id: int
    channel: str
    occurred_at: datetime
    status: str
    rating: int | None
    text_preview: str
    customer_name: str | None


class TimelineItem(Schema):
    interaction: TimelineInteraction
    match_reason: str
    confidence: float
    action_mode: ActionMode
    level: Level | None  # null for the interaction itself
    deterministic: bool


class Timeline(Schema):
    interaction_id: int
    scope: Scope
    items: list[TimelineItem]
    truncated: bool = Field(
        description="the scope had more related items than the timeline shows (nearest kept)"
    )
