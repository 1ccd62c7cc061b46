from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import TypeAdapter
from sqlalchemy import select

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import SessionDep
from app.core.errors import ERROR_RESPONSES, Conflict
from app.core.pagination import decode_cursor, encode_cursor
from app.core.schemas import Id, Page
from app.sellers import service as sellers_service
from app.sellers.models import MarketplaceAccount
from app.sync import repository, service
from app.sync.models import SyncRun
from app.sync.schemas import (
    ChannelStatus,
    SyncChannel,
    SyncRequest,
    SyncRequested,
    SyncRunRead,
    SyncStatus,
)

RUNS_CURSOR = TypeAdapter(tuple[Id])

router = APIRouter(prefix="/sync", tags=["sync"], responses=ERROR_RESPONSES)


@router.post("", response_model=SyncRequested, status_code=status.HTTP_202_ACCEPTED)
async def sync_now(
    principal: CurrentPrincipal, session: SessionDep, body: SyncRequest | None = None
) -> SyncRequested:
    """Queue a sync now (one channel or all); a channel already syncing is reported, not queued."""
    body = body or SyncRequest()
    account = await session.scalar(
        select(MarketplaceAccount.id).where(
            MarketplaceAccount.seller_id == principal.seller_id,
            MarketplaceAccount.marketplace == "wildberries",
            MarketplaceAccount.is_active,
        )
    )
    if account is None:
        raise Conflict("connect a Wildberries account first", code="no_marketplace_account")
    channels = (body.channel,) if body.channel else service.CHANNELS
    runs, running = await service.request_runs(
        session, principal.seller_id, channels, trigger="manual", full_resync=body.full_resync
    )
    return SyncRequested(
        runs=[SyncRunRead.model_validate(r) for r in runs], already_running=running
    )


@router.get("/runs", response_model=Page[SyncRunRead])
async def list_runs(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
    channel: SyncChannel | None = None,
) -> Page[SyncRunRead]:
    stmt = select(SyncRun).where(SyncRun.seller_id == principal.seller_id)
    if channel:
        stmt = stmt.where(SyncRun.channel == channel)
    if cursor:
        (before_id,) = decode_cursor(cursor, RUNS_CURSOR)
        stmt = stmt.where(SyncRun.id < before_id)
    rows = list((await session.scalars(stmt.order_by(SyncRun.id.desc()).limit(limit + 1))).all())
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return Page[SyncRunRead](
        items=[SyncRunRead.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor
    )


@router.get("/status", response_model=SyncStatus)
async def sync_status(principal: CurrentPrincipal, session: SessionDep) -> SyncStatus:
    seller = await sellers_service.get_seller(session, principal.seller_id)
    channels = {}
    for channel in service.CHANNELS:
        last = await session.scalar(
            select(SyncRun)
            .where(SyncRun.seller_id == seller.id, SyncRun.channel == channel)
            .order_by(SyncRun.id.desc())
            .limit(1)
        )
        channels[channel] = ChannelStatus(
            cursor=await repository.get_cursor_state(session, seller.id, channel),
            last_run=SyncRunRead.model_validate(last) if last else None,
        )
    return SyncStatus(
        sync_status=seller.sync_status,
        sync_error=seller.sync_error,
        last_sync_at=seller.last_sync_at,
        next_sync_at=seller.next_sync_at,
        channels=channels,
    )
