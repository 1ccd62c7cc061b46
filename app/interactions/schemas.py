from datetime import datetime
from typing import Any

from app.core.schemas import Schema


class InteractionRead(Schema):
    id: int
    marketplace: str
    channel: str
    external_id: str
    thread_key: str | None
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
    sla_due_at: datetime | None
    occurred_at: datetime
    first_response_at: datetime | None
    source: str
    extra: dict[str, Any]
