from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import RedisDep, SessionDep
from app.core.errors import ERROR_RESPONSES, ErrorEnvelope
from app.core.schemas import Page
from app.sellers import service as sellers_service
from app.sellers.schemas import AccountStateRead
from app.sync import service
from app.sync.schemas import (
    ChannelStatus,
    SyncChannel,
    SyncGapRead,
    SyncRequest,
    SyncRequested,
    SyncRunRead,
    SyncStatus,
)

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
    rows, next_cursor = await service.list_runs(
        session, principal.seller_id, limit=limit, cursor=cursor, channel=channel
    )
    return Page[SyncRunRead](
        items=[SyncRunRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get("/status", response_model=SyncStatus)
async def sync_status(principal: CurrentPrincipal, session: SessionDep) -> SyncStatus:
    state = await service.status(session, principal.seller_id)
    seller, account, last_runs = state.seller, state.account, state.last_runs
    channels = {
        channel: ChannelStatus(
            cursor=state.cursors[channel],
            last_run=SyncRunRead.model_validate(last_runs[channel])
            if channel in last_runs
            else None,
        )
        for channel in service.CHANNELS
    }
    return SyncStatus(
        sync_status=seller.sync_status,
        sync_error=seller.sync_error,
        last_sync_at=seller.last_sync_at,
        next_sync_at=seller.next_sync_at,
        account=AccountStateRead.model_validate(account) if account else None,
        channels=channels,
        gaps=[SyncGapRead.model_validate(g) for g in state.gaps],
    )
