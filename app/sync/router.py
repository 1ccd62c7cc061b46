from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import TypeAdapter
from sqlalchemy import select

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import RedisDep, SessionDep
from app.core.errors import ERROR_RESPONSES, ErrorEnvelope
from app.core.pagination import decode_cursor, encode_cursor
from app.core.schemas import Id, Page
from app.sellers import repository as sellers_repository
from app.sellers import service as sellers_service
from app.sellers.schemas import AccountStateRead
from app.sync import repository, service
from app.sync.models import SyncRun
from app.sync.schemas import (
    ChannelStatus,
    SyncChannel,
    SyncGapRead,
    SyncRequest,
    SyncRequested,
    SyncRunRead,
    SyncStatus,
)

RUNS_CURSOR = TypeAdapter(tuple[Id])

router = APIRouter(prefix="/sync", tags=["sync"], responses=ERROR_RESPONSES)


@router.post(
    "",
    response_model=SyncRequested,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        409: {
            "model": ErrorEnvelope,
            "description": "`no_marketplace_account`, or `needs_reauth`: the marketplace "
            "refused the token (details say why); rotate or re-check it",
        }
    },
)
async def sync_now(
    principal: CurrentPrincipal,
    session: SessionDep,
    redis: RedisDep,
    body: SyncRequest | None = None,
) -> SyncRequested:
    """Queue a sync now (one channel or all). A channel whose run is alive is reported under
    `already_running`; one whose run is stuck (its worker died) is taken up again and listed
    under `runs`."""
    body = body or SyncRequest()
    await sellers_service.usable_account(session, principal.seller_id, service.MARKETPLACE)
    channels = (body.channel,) if body.channel else service.CHANNELS
    runs, running = await service.start_now(
        session, redis, principal.seller_id, channels, full_resync=body.full_resync
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
    account = await sellers_repository.get_account_for_marketplace(
        session, seller_id=seller.id, marketplace=service.MARKETPLACE
    )
    gaps = await repository.open_gaps(session, seller.id)
    return SyncStatus(
        sync_status=seller.sync_status,
        sync_error=seller.sync_error,
        last_sync_at=seller.last_sync_at,
        next_sync_at=seller.next_sync_at,
        account=AccountStateRead.model_validate(account) if account else None,
        channels=channels,
        gaps=[SyncGapRead.model_validate(g) for g in gaps],
    )
