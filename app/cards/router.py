from fastapi import APIRouter

from app.auth.dependencies import CurrentPrincipal
from app.cards import service
from app.cards.schemas import InteractionCard, Timeline
from app.core.deps import ReadConnection
from app.core.errors import ERROR_RESPONSES
from app.core.schemas import Id

router = APIRouter(responses=ERROR_RESPONSES)


@router.get("/interactions/{interaction_id}", response_model=InteractionCard, tags=["interactions"])
async def read_card(
    interaction_id: Id, principal: CurrentPrincipal, db: ReadConnection
) -> InteractionCard:
    """The card: the interaction, its chat messages, product context, links and SLA."""
    return await service.card(db, principal, interaction_id)


@router.get("/interactions/{interaction_id}/timeline", response_model=Timeline, tags=["links"])
async def read_timeline(
    interaction_id: Id, principal: CurrentPrincipal, db: ReadConnection
) -> Timeline:
    """The thread across channels: scope customer+order, customer, product or single."""
    return await service.timeline(db, principal.seller_id, interaction_id)
