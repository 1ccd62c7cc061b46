from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import SessionDep
from app.core.errors import ERROR_RESPONSES, too_many_items
from app.core.schemas import Id, Page
from app.links import service
from app.links.models import Band
from app.links.schemas import (
    MAX_RECOMPUTE_IDS,
    LinkRead,
    RecomputeQueued,
    RecomputeRequest,
)

router = APIRouter(tags=["links"], responses=ERROR_RESPONSES)


@router.get("/interactions/{interaction_id}/links", response_model=Page[LinkRead])
async def list_links(
    interaction_id: Id,
    principal: CurrentPrincipal,
    session: SessionDep,
    min_band: Band = service.SHOWN_MIN_BAND,
    limit: Annotated[int, Query(ge=1, le=100)] = service.SHOWN_LIMIT,
) -> Page[LinkRead]:
    """Stored links with confidence, signals and `action_mode` (low band: analytics only)."""
    links = await service.links_for(
        session, principal.seller_id, interaction_id, min_band=min_band, limit=limit, or_404=True
    )
    return Page[LinkRead](items=links, next_cursor=None)


@router.post(
    "/links/recompute",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RecomputeQueued,
    responses=too_many_items(f"more than {MAX_RECOMPUTE_IDS} interaction_ids"),
)
async def recompute_links(
    principal: CurrentPrincipal, session: SessionDep, body: RecomputeRequest | None = None
) -> RecomputeQueued:
    """Queue a recompute of the given interactions' links, or of all the seller's."""
    ids = body.interaction_ids if body is not None else None
    await service.request_recompute(session, principal.seller_id, ids)
    return RecomputeQueued()
