from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.connectors.base import Channel
from app.core.schemas import Input, Schema
from app.sellers.schemas import AccountStateRead

SyncChannel = Channel  # the channel literal is defined once, in app.connectors.base


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
    gaps: int
    resumes: int
    error: str | None


class SyncRequested(BaseModel):
    runs: list[SyncRunRead]  # queued now, or stuck (their worker died) and taken up again
    already_running: dict[str, int]


class SyncGapRead(Schema):
    """A window of one list the marketplace's caps kept the sync from reading completely;
    later syncs read it again and close it once nothing is missing."""

    id: int
    channel: str
    list_name: str
    window_from: datetime
    window_to: datetime
    total: int
    missing: int
    run_id: int | None
    last_run_id: int | None
    found_at: datetime
    checked_at: datetime


class ChannelStatus(BaseModel):
    cursor: dict[str, Any]
    last_run: SyncRunRead | None


class SyncStatus(BaseModel):
    sync_status: str
    sync_error: str | None
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    # The synced marketplace's account: `needs_reauth` means syncs are paused, and says why.
    account: AccountStateRead | None
    channels: dict[str, ChannelStatus]
    gaps: list[SyncGapRead]  # open ones, newest window first
