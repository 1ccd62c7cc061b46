from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import ReadConnection, SessionDep
from app.core.errors import ERROR_RESPONSES, too_many_items
from app.core.schemas import Id
from app.interactions import service
from app.interactions.schemas import (
    MAX_BULK_IDS,
    BulkResult,
    BulkUpdate,
    Counts,
    InteractionFilters,
    InteractionListQuery,
    InteractionPage,
    InteractionRead,
    InteractionUpdate,
)

router = APIRouter(prefix="/interactions", tags=["interactions"], responses=ERROR_RESPONSES)


@router.get("", response_model=InteractionPage)
async def list_interactions(
    principal: CurrentPrincipal,
    db: ReadConnection,
    params: Annotated[InteractionListQuery, Query()],
) -> InteractionPage:
    """The inbox. Default order: priority then SLA due (relevance when `q` is given).

    `sort=relevance` ranks the 500 newest matches of `q` (a common word can match a quarter of a
    big seller's inbox); `sort=newest` with `q` reads every match.
    """
    return await service.list_interactions(db, principal, params)


@router.get("/counts", response_model=Counts)
async def count_interactions(
    principal: CurrentPrincipal,
    session: SessionDep,
    filters: Annotated[InteractionFilters, Query()],
) -> Counts:
    """Counts for the client's tabs, per channel and per status, under the other filters."""
    return await service.count_interactions(session, principal, filters)


@router.post(
    "/bulk", response_model=BulkResult, responses=too_many_items(f"more than {MAX_BULK_IDS} ids")
)
async def bulk_update(
    body: BulkUpdate, principal: CurrentPrincipal, session: SessionDep
) -> BulkResult:
    """Triage many at once; ids that are not the caller's are reported as not found."""
    updated, not_found = await service.bulk_update(session, principal, body.ids, body.changes)
    return BulkResult(updated=updated, not_found=not_found)


@router.patch("/{interaction_id}", response_model=InteractionRead)
async def update_interaction(
    interaction_id: Id, body: InteractionUpdate, principal: CurrentPrincipal, session: SessionDep
) -> InteractionRead:
    row = await service.update(session, principal, interaction_id, body)
    return service.read(row, datetime.now(UTC))
