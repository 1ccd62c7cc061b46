from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.core.schemas import Id, Input, Schema
from app.links.models import Band, Level

ActionMode = Literal["auto_allowed", "assist_only"]

MAX_RECOMPUTE_IDS = 5000


class LinkRead(Schema):
    """One stored link of an interaction, as the card and `GET …/links` show it."""

    target_id: int
    target_channel: str
    target_occurred_at: datetime
    target_text_preview: str
    level: Level
    deterministic: bool
    confidence: float
    band: Band
    match_reason: str
    signals: dict[str, Any]
    action_mode: ActionMode


class RecomputeRequest(Input):
    interaction_ids: list[Id] | None = Field(
        default=None, min_length=1, max_length=MAX_RECOMPUTE_IDS
    )


class RecomputeQueued(BaseModel):
    queued: bool = True
