from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from app.core.schemas import Input, Schema

SyncChannel = Literal["review", "question", "chat"]


class SyncRequest(Input):
    channel: SyncChannel | None = None
    full_resync: bool = False


class SyncRunRead(Schema):
    id: int
    channel: str
    trigger: str
    full_resync: bool
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    fetched: int
    created: int
    updated: int
    skipped: int
    errors: int
    rate_limited: int
    requests: int
    error: str | None


class SyncRequested(BaseModel):
    runs: list[SyncRunRead]
    already_running: dict[str, int]


class ChannelStatus(BaseModel):
    cursor: dict[str, Any]
    last_run: SyncRunRead | None


class SyncStatus(BaseModel):
    sync_status: str
    sync_error: str | None
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    channels: dict[str, ChannelStatus]
