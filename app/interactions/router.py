from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import ReadConnection, SessionDep
from app.core.errors import ERROR_RESPONSES, too_many_items
from app.core.query import query_model, query_parameters
from app.core.responses import json_response, plain_json_response
from app.core.schemas import Id
from app.dispatch.schemas import ReplyRead
from app.drafts.schemas import DraftRead
from app.interactions import service
from app.interactions.schemas import (
    MAX_BULK_IDS,
    BulkResult,
    BulkUpdate,
    ChatMessageRead,
    Counts,
    InteractionFilters,
    InteractionListQuery,
    InteractionPage,
    InteractionRead,
    InteractionUpdate,
    ProductContext,
    SlaInfo,
)
from app.links.schemas import LinkRead

router = APIRouter(prefix="/interactions", tags=["interactions"], responses=ERROR_RESPONSES)

Filters = Annotated[InteractionFilters, Depends(query_model(InteractionFilters))]
FILTER_DOCS = {"parameters": query_parameters(InteractionFilters)}
ListQuery = Annotated[InteractionListQuery, Depends(query_model(InteractionListQuery))]
LIST_DOCS = {"parameters": query_parameters(InteractionListQuery)}


class InteractionCard(BaseModel):
    interaction: InteractionRead
    messages: list[ChatMessageRead]
    context: ProductContext
    links: list[LinkRead]
    sla: SlaInfo
    last_draft: DraftRead | None
    outbox: ReplyRead | None


@router.get("", response_model=InteractionPage, openapi_extra=LIST_DOCS)
async def list_interactions(
    principal: CurrentPrincipal, db: ReadConnection, params: ListQuery
) -> Response:
    """The inbox. Default order: priority then SLA due (relevance when `q` is given).

    `sort=relevance` ranks the 500 newest matches of `q` (a common word can match a quarter of a
    big seller's inbox); `sort=newest` with `q` reads every match.
    """
    return plain_json_response(await service.list_interactions(db, principal, params))


@router.get("/counts", response_model=Counts, openapi_extra=FILTER_DOCS)
async def count_interactions(
    principal: CurrentPrincipal, session: SessionDep, filters: Filters
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


@router.get("/{interaction_id}", response_model=InteractionCard)
async def read_card(
    interaction_id: Id, principal: CurrentPrincipal, db: ReadConnection
) -> Response:
    """The card: the interaction, its chat messages, product context, links and SLA."""
    card = InteractionCard.model_validate(await service.card(db, principal, interaction_id))
    return json_response(card)


@router.patch("/{interaction_id}", response_model=InteractionRead)
async def update_interaction(
    interaction_id: Id, body: InteractionUpdate, principal: CurrentPrincipal, session: SessionDep
) -> InteractionRead:
    row = await service.update(session, principal, interaction_id, body)
    return service.read(row, datetime.now(UTC))
