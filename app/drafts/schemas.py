from datetime import datetime
from typing import Any

from app.core.schemas import Schema


class DraftRead(Schema):
    """A draft reply: its text, who wrote it, what it was grounded on (`sources`) and what the
    guardrails found (`warnings`; an `error` severity would block sending it as is)."""

    interaction_id: int
    text: str
    provider: str
    model: str | None
    fallback_reason: str | None
    warnings: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    created_at: datetime
